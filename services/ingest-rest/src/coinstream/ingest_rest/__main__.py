"""``coinstream-ingest-rest`` (or ``python -m coinstream.ingest_rest``): poll every enabled
REST source and publish the raw payloads to Kafka. ``--help`` lists every setting."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from coinstream.ingest_rest import app
from coinstream.ingest_rest.settings import installed_settings_class
from coinstream.runtime import configure_logging, run
from coinstream.runtime.cli import load_settings

PROG = "coinstream-ingest-rest"


def main(argv: Sequence[str] | None = None) -> int:
    settings, _ = load_settings(
        installed_settings_class(),
        argv,
        prog=PROG,
        description="Poll REST market-data sources within their rate budgets and publish "
        "the raw payloads to Kafka. One option group per installed source plugin.",
        distribution="coinstream-ingest-rest",
    )
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    return run(lambda stop: app.main(settings, stop), settings.shutdown_timeout_s)


if __name__ == "__main__":
    sys.exit(main())
