"""``python -m coinstream.normalizer``: run the normalizer until SIGTERM/SIGINT."""

from __future__ import annotations

import sys

from coinstream.normalizer import app
from coinstream.normalizer.settings import NormalizerSettings
from coinstream.runtime import configure_logging, run


def main() -> int:
    settings = NormalizerSettings()
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    return run(lambda stop: app.main(settings, stop), settings.shutdown_timeout_s)


if __name__ == "__main__":
    sys.exit(main())
