"""Command line: ``[options] [run]`` (default), ``record --out F``, ``replay --in F``.

Settings options (``--help`` lists them with their environment variables) go before the
command: ``coinstream-ingest-ws --log-level DEBUG record --out session.jsonl.gz``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path

from coinstream.ingest_ws import app, recording
from coinstream.ingest_ws.settings import IngestWsServiceSettings, installed_settings_class
from coinstream.runtime import configure_logging, run
from coinstream.runtime.cli import configuration_error, configuration_errors, load_settings

PROG = "coinstream-ingest-ws"
_OWN = {"command", "out", "duration", "max_messages", "path", "speed"}


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    parser.usage = "%(prog)s [options] [run | record --out F | replay --in F]"
    sub = parser.add_subparsers(dest="command", title="commands")
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
    return _OWN


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    if text == "recorded":
        return 1.0
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        configuration_error(PROG, f"--speed={text!r}: expected 'max', 'recorded' or a number > 0")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    with configuration_errors(PROG, IngestWsServiceSettings):
        settings_class = installed_settings_class()  # one field per installed venue plugin
    settings, args = load_settings(
        settings_class,
        argv,
        prog=PROG,
        description="Hold exchange WebSocket feeds (Binance, Coinbase, Kraken and venue "
        "plugins), detect gaps and stale streams, and publish the raw frames to Kafka; or "
        "record them to a file and replay one.",
        distribution="coinstream-ingest-ws",
        add_arguments=_commands,
    )
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    with configuration_errors(PROG, settings_class):
        app.build_protocols(settings)
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
