"""``coinstream-ingest-ws [options] [run|record|replay]`` (or ``python -m
coinstream.ingest_ws``): the service, or record/replay files. ``--help`` lists every setting."""

from __future__ import annotations

import sys

from coinstream.ingest_ws.cli import main

if __name__ == "__main__":
    sys.exit(main())
