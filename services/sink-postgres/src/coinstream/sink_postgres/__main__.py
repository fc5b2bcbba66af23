"""``python -m coinstream.sink_postgres [run|migrate]``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from coinstream.runtime import configure_logging, run
from coinstream.sink_postgres import app
from coinstream.sink_postgres.settings import SinkPostgresSettings


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m coinstream.sink_postgres",
        description="Store canonical Coinstream events in PostgreSQL (settings: SINK_POSTGRES_*).",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "migrate"],
        help="run the sink (default) or only apply the database migrations and exit",
    )
    args = parser.parse_args(argv)
    settings = SinkPostgresSettings()
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    if args.command == "migrate":
        asyncio.run(app.migrate_once(settings))
        return 0
    return run(lambda stop: app.main(settings, stop), settings.shutdown_timeout_s)


if __name__ == "__main__":
    sys.exit(cli())
