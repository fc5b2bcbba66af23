"""``python -m coinstream.ingest_rest``: poll every enabled REST source."""

from __future__ import annotations

import sys

from coinstream.ingest_rest import app
from coinstream.ingest_rest.settings import build_settings
from coinstream.runtime import configure_logging, run


def main() -> None:
    settings = build_settings()
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    sys.exit(run(lambda stop: app.main(settings, stop), settings.shutdown_timeout_s))


if __name__ == "__main__":
    main()
