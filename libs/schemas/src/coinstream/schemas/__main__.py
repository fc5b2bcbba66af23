"""``python -m coinstream.schemas export-jsonschema DIR`` and ``export-asyncapi FILE``."""

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
    asyncapi = sub.add_parser(
        "export-asyncapi", help="write the AsyncAPI 3.0 document (YAML, or JSON for *.json)"
    )
    asyncapi.add_argument("file", type=Path)
    asyncapi.add_argument("--prefix", default="coinstream", help="topic prefix")
    args = parser.parse_args(argv)
    if args.command == "export-jsonschema":
        for path in export_jsonschema(args.directory):
            print(path)
    elif args.command == "export-asyncapi":
        from coinstream.schemas.asyncapi import export_asyncapi

        print(export_asyncapi(args.file, args.prefix))
    return 0


if __name__ == "__main__":
    sys.exit(main())
