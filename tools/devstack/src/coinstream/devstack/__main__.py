"""``coinstream-devstack demo`` (or ``python -m coinstream.devstack demo``): run the whole
pipeline locally."""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="coinstream-devstack",
        description="The local development stack: broker, database, simulator and services.",
    )
    version = importlib.metadata.version("coinstream-devstack")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="start broker, database, simulator and all services")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from coinstream.devstack.demo import main as demo_main

        return demo_main()
    return 2


if __name__ == "__main__":
    sys.exit(main())
