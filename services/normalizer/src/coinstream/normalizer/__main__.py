"""``coinstream-normalizer`` (or ``python -m coinstream.normalizer``): run the normalizer until
SIGTERM/SIGINT. ``--help`` lists every setting."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from coinstream.normalizer import app
from coinstream.normalizer.settings import NormalizerSettings
from coinstream.runtime import configure_logging, run
from coinstream.runtime.cli import load_settings

PROG = "coinstream-normalizer"


def main(argv: Sequence[str] | None = None) -> int:
    settings, _ = load_settings(
        NormalizerSettings,
        argv,
        prog=PROG,
        description="Turn raw source records into canonical price, sentiment, metadata and "
        "candle events; dead-letter what cannot be parsed.",
        distribution="coinstream-normalizer",
    )
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    return run(lambda stop: app.main(settings, stop), settings.shutdown_timeout_s)


if __name__ == "__main__":
    sys.exit(main())
