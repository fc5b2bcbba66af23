"""``python -m coinstream.schemas export-jsonschema DIR``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from coinstream.schemas.jsonschema import export_jsonschema


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coinstream.schemas")
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export-jsonschema", help="write JSON Schema for every public event")
    export.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    if args.command == "export-jsonschema":
        for path in export_jsonschema(args.directory):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
