"""``python -m coinstream.devstack demo``: run the whole pipeline locally."""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m coinstream.devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="start broker, database, simulator and all services")
    args = parser.parse_args()
    if args.command == "demo":
        from coinstream.devstack.demo import main as demo_main

        return demo_main()
    return 2


if __name__ == "__main__":
    sys.exit(main())
