"""Command line: ``run`` (default), ``record --out F``, ``replay --in F [--speed X]``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from coinstream.ingest_ws import app, recording
from coinstream.ingest_ws.errors import ConfigError
from coinstream.ingest_ws.settings import IngestWsSettings
from coinstream.runtime import configure_logging, run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m coinstream.ingest_ws")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the service (default)")
    rec = sub.add_parser("record", help="record raw envelopes to a gzip JSONL file")
    rec.add_argument("--out", type=Path, required=True, help="file to write (.jsonl.gz)")
    rec.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    rec.add_argument("--max-messages", type=int, default=None, help="stop after N envelopes")
    rep = sub.add_parser("replay", help="publish a recording into the raw topics")
    rep.add_argument("--in", dest="path", type=Path, required=True, help="recording to replay")
    rep.add_argument(
        "--speed",
        default="max",
        help="'max' (as fast as possible, default), 'recorded' (1.0) or a speed factor",
    )
    return parser


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    if text == "recorded":
        return 1.0
    value = float(text)
    if value <= 0:
        raise SystemExit("--speed must be 'max', 'recorded' or a positive number")
    return value


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    settings = IngestWsSettings()
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    try:
        app.build_protocols(settings)
    except ConfigError as exc:
        print(f"ingest-ws: configuration error: {exc}", file=sys.stderr, flush=True)
        return 2
    command = args.command or "run"
    if command == "record":

        async def _record(stop: asyncio.Event) -> None:
            await recording.record(settings, args.out, stop, args.duration, args.max_messages)

        return run(_record, settings.shutdown_timeout_s)
    if command == "replay":
        speed = _speed(args.speed)

        async def _replay(stop: asyncio.Event) -> None:
            await recording.replay(settings, args.path, stop, speed)

        return run(_replay, settings.shutdown_timeout_s)
    return run(lambda stop: app.main(settings, stop), settings.shutdown_timeout_s)
