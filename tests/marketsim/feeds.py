"""Real WebSocket clients for the three simulated venues, collecting BTC trades as they come."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import websockets

FEEDS = {  # venue -> symbol it streams
    "binance": "BTC-USDT",
    "coinbase": "BTC-USD",
    "kraken": "BTC-USD",
}


@dataclass
class Tape:
    """Every BTC trade each venue streamed, and the cross-venue spread after each one."""

    prices: dict[str, dict[int, Decimal]] = field(default_factory=dict)  # venue -> id -> price
    latest: dict[str, Decimal] = field(default_factory=dict)
    spreads: list[tuple[float, float]] = field(default_factory=list)  # (monotonic, percent)

    def add(self, venue: str, trade_id: int, price: Decimal) -> None:
        self.prices.setdefault(venue, {})[trade_id] = price
        self.latest[venue] = price
        if len(self.latest) == len(FEEDS):
            lo, hi = min(self.latest.values()), max(self.latest.values())
            self.spreads.append((time.monotonic(), float((hi - lo) / lo * 100)))

    def max_spread(self, since: float = 0.0) -> float:
        return max(s for t, s in self.spreads if t >= since)

    def after(self, venue: str, trade_id: int) -> dict[int, Decimal]:
        return {i: p for i, p in self.prices.get(venue, {}).items() if i > trade_id}


async def _binance(ws_url: str, tape: Tape) -> None:
    async with websockets.connect(f"{ws_url}/binance/stream?streams=btcusdt@trade") as ws:
        async for raw in ws:
            data = json.loads(raw)["data"]
            tape.add("binance", data["t"], Decimal(data["p"]))


async def _coinbase(ws_url: str, tape: Tape) -> None:
    async with websockets.connect(f"{ws_url}/coinbase") as ws:
        sub = {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "market_trades"}
        await ws.send(json.dumps(sub))
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("channel") != "market_trades":
                continue
            for event in msg["events"]:
                for t in event["trades"]:
                    tape.add("coinbase", int(t["trade_id"]), Decimal(t["price"]))


async def _kraken(ws_url: str, tape: Tape) -> None:
    async with websockets.connect(f"{ws_url}/kraken/v2") as ws:
        params: dict[str, Any] = {"channel": "trade", "symbol": ["BTC/USD"], "snapshot": False}
        await ws.send(json.dumps({"method": "subscribe", "params": params}))
        async for raw in ws:
            msg = json.loads(raw, parse_float=Decimal)
            if msg.get("channel") == "trade":
                for t in msg["data"]:
                    tape.add("kraken", t["trade_id"], t["price"])


@contextlib.asynccontextmanager
async def streaming(ws_url: str) -> AsyncIterator[Tape]:
    """Stream BTC trades from every venue into a ``Tape`` while the block runs."""
    tape = Tape()
    tasks = [asyncio.create_task(feed(ws_url, tape)) for feed in (_binance, _coinbase, _kraken)]
    try:
        yield tape
    finally:
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [r for r in results if not isinstance(r, asyncio.CancelledError | None)]
        assert not errors, errors


async def until(probe: Any, what: str, timeout: float = 10.0) -> Any:
    """Poll ``probe()`` until it returns something truthy (or fail saying ``what``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.1)
