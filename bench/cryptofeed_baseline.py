"""cryptofeed's cost per Binance trade message, for ``normalizer_bench.py --cryptofeed``.

Runs inside a separate virtual environment that has cryptofeed installed (the bench creates
it), never in Coinstream's. Reads a JSON list of Binance combined-stream ``aggTrade`` frames
(the text ingest-ws publishes as payloads) from the file given as the first argument, feeds
each to ``Binance.message_handler`` (cryptofeed's own parsing: ``json.loads`` with Decimal
floats, a ``Trade`` object, the callback) and prints one JSON line with CPU microseconds per
message:

- ``parse``: the callback does nothing;
- ``parse_serialize``: the callback also writes the trade as JSON (``to_dict`` with string
  numbers, then ``json.dumps``), like a producer would before publishing.

The symbol table is given directly (cryptofeed would download Binance's exchangeInfo).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from cryptofeed.defines import TRADES
from cryptofeed.exchanges import Binance
from cryptofeed.symbols import Symbols


def symbols(frames: list[str]) -> None:
    quotes = ("USDT", "USDC", "BTC", "ETH", "USD")
    normalized: dict[str, str] = {}
    info: dict[str, dict[str, Any]] = {"tick_size": {}, "instrument_type": {}}
    for frame in frames:
        native = json.loads(frame)["data"]["s"]
        quote = next(q for q in quotes if native.endswith(q))
        std = f"{native[: -len(quote)]}-{quote}"
        normalized[std] = native
        info["tick_size"][std] = "0.01"
        info["instrument_type"][std] = "spot"
    Symbols.set(Binance.id, normalized, info)


async def measure(frames: list[str], serialize: bool) -> float:
    out: list[bytes] = []

    async def on_trade(trade: Any, receipt: float) -> None:
        if serialize:
            out.append(json.dumps(trade.to_dict(numeric_type=str)).encode())

    feed = Binance(symbols=sorted(Symbols.get(Binance.id)[0]), channels=[TRADES],
                   callbacks={TRADES: on_trade})  # fmt: skip
    handler = feed.message_handler
    for frame in frames[:1000]:  # warm up
        await handler(frame, None, 0.0)
    started = time.process_time()
    for frame in frames:
        await handler(frame, None, 0.0)
    return (time.process_time() - started) / len(frames) * 1e6


def main() -> None:
    with open(sys.argv[1]) as f:
        frames: list[str] = json.load(f)
    symbols(frames)
    parse = asyncio.run(measure(frames, serialize=False))
    both = asyncio.run(measure(frames, serialize=True))
    print(json.dumps({"messages": len(frames), "parse": parse, "parse_serialize": both}))


if __name__ == "__main__":
    main()
