"""``python -m coinstream.ingest_ws [run|record|replay]``: the service, or record/replay files."""

from __future__ import annotations

import sys

from coinstream.ingest_ws.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
