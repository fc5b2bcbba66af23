"""``coinstream-sink-postgres [options] [run|migrate]`` (or ``python -m
coinstream.sink_postgres``): store canonical events in PostgreSQL, or only migrate."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from coinstream.runtime import configure_logging, run
from coinstream.runtime.cli import load_settings
from coinstream.sink_postgres import app
from coinstream.sink_postgres.settings import SinkPostgresSettings

PROG = "coinstream-sink-postgres"


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    parser.usage = "%(prog)s [options] [run|migrate]"
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "migrate"],
        help="run the sink (default) or only apply the database migrations and exit",
    )
    return {"command"}


def main(argv: Sequence[str] | None = None) -> int:
    settings, args = load_settings(
        SinkPostgresSettings,
        argv,
        prog=PROG,
        description="Store every canonical Coinstream event in PostgreSQL exactly once.",
        distribution="coinstream-sink-postgres",
        add_arguments=_commands,
    )
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    if args.command == "migrate":
        asyncio.run(app.migrate_once(settings))
        return 0
    return run(lambda stop: app.main(settings, stop), settings.shutdown_timeout_s)


if __name__ == "__main__":
    sys.exit(main())
