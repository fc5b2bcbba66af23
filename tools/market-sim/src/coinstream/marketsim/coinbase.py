"""Coinbase Advanced Trade market-data WebSocket server (``/coinbase``).

Speaks the documented protocol: ``{"type": "subscribe", "product_ids": [...], "channel": c}``
with exactly one channel per message, sent within 5 s of opening (else the server disconnects);
each subscribe/unsubscribe is answered with a ``subscriptions`` message listing everything the
connection is subscribed to. Messages are ``{"channel", "client_id", "timestamp" (RFC3339 ns),
"sequence_num", "events": [...]}`` with one ``sequence_num`` counter per connection. Channels:
``ticker`` (snapshot then one update per trade), ``market_trades`` (snapshot of recent trades,
then updates), ``heartbeats`` (every second, ``heartbeat_counter`` as a string). More than 8
incoming messages in a second gets an error and a disconnect. Faults: ``coinbase.*`` (see
``wsfaults``). Prices are the market's as Coinbase sees it (``PROFILE``; see
``market.VenueView``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from coinstream.marketsim.app import SIM_KEY, Simulator
from coinstream.marketsim.fairvalue import VenueProfile
from coinstream.marketsim.history import answer_fault, available
from coinstream.marketsim.market import Quote, Trade
from coinstream.marketsim.wsfaults import Wire, cancel, reject_upgrade, websocket

VENUE = "coinbase"
PROFILE = VenueProfile(basis_bp=3.0, drift_bp=1.5, cadence_s=1.0, jitter_bp=1.0, latency_s=0.06)
CHANNELS = frozenset({"ticker", "ticker_batch", "market_trades", "heartbeats", "status"})
SUBSCRIBE_DEADLINE_S = 5.0
MESSAGES_PER_S = 8
HEARTBEAT_INTERVAL_S = 1.0


SNAPSHOT_TRADES = 50
"""Recent trades of each product in the ``market_trades`` snapshot after subscribing."""


def rfc3339_ns(when: datetime | None = None) -> str:
    """``2023-02-09T20:30:37.167359596Z`` (nanoseconds, as the venue sends)."""
    when = when or datetime.now(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{time.time_ns() % 1000:03d}Z"


def go_time(when: datetime) -> str:
    """Go's ``time.String()`` form used by ``current_time`` in heartbeats."""
    return when.strftime("%Y-%m-%d %H:%M:%S.%f") + "000 +0000 UTC m=+0.000000001"


def _s(value: Decimal) -> str:
    return format(value.normalize(), "f")


def trade_item(t: Trade) -> dict[str, Any]:
    return {
        "trade_id": str(t.trade_id),
        "product_id": t.symbol,
        "price": _s(t.price),
        "size": _s(t.size),
        "side": "BUY" if t.side == "buy" else "SELL",
        "time": t.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


class _Connection:
    def __init__(self, sim: Simulator, wire: Wire) -> None:
        self.sim = sim
        self.view = sim.market.venue(VENUE)
        self.wire = wire
        self.subs: dict[str, set[str]] = {}
        self.seq = 0
        self.heartbeat_counter = 0
        self.quotes: dict[str, Quote] = {}
        self.opens: dict[str, Decimal] = {}
        self.subscribed = asyncio.Event()
        self.incoming: deque[float] = deque()

    def _envelope(self, channel: str, events: list[dict[str, Any]]) -> tuple[str, bool]:
        seq = self.seq
        self.seq += 1
        msg = {
            "channel": channel,
            "client_id": "",
            "timestamp": rfc3339_ns(),
            "sequence_num": seq,
            "events": events,
        }
        return orjson.dumps(msg).decode(), True

    async def _send(self, channel: str, events: list[dict[str, Any]], data: bool = True) -> None:
        text, _ = self._envelope(channel, events)
        if data:
            await self.wire.data(text, sequenced=True)
        else:
            await self.wire.control(text)

    def _ticker(self, symbol: str, price: Decimal) -> dict[str, Any]:
        q = self.quotes.get(symbol)
        open_ = self.opens.setdefault(symbol, price)
        pct = (price - open_) / open_ * 100 if open_ else Decimal(0)
        item: dict[str, Any] = {
            "type": "ticker",
            "product_id": symbol,
            "price": _s(price),
            "volume_24_h": "16038.28770938",
            "low_24_h": _s(min(open_, price)),
            "high_24_h": _s(max(open_, price)),
            "low_52_w": _s(min(open_, price)),
            "high_52_w": _s(max(open_, price)),
            "price_percent_chg_24_h": format(pct, "f")[:18],
        }
        if q is not None:
            item.update(
                best_bid=_s(q.bid),
                best_bid_quantity=_s(q.bid_size),
                best_ask=_s(q.ask),
                best_ask_quantity=_s(q.ask_size),
            )
        return item

    async def on_tick(self, tick: Trade | Quote) -> None:
        if isinstance(tick, Quote):
            self.quotes[tick.symbol] = tick
            return
        if tick.symbol in self.subs.get("ticker", ()):
            event = {"type": "update", "tickers": [self._ticker(tick.symbol, tick.price)]}
            await self._send("ticker", [event])
        if tick.symbol in self.subs.get("market_trades", ()):
            await self._send("market_trades", [{"type": "update", "trades": [trade_item(tick)]}])

    async def pump(self) -> None:
        with self.view.subscribe() as feed:
            async for tick in feed:
                await self.on_tick(tick)

    async def heartbeats(self) -> None:
        while True:
            await asyncio.sleep(
                float(self.sim.faults.get("coinbase.heartbeat_s", HEARTBEAT_INTERVAL_S))
            )
            if not self.subs.get("heartbeats"):
                continue
            self.heartbeat_counter += 1
            now = datetime.now(UTC)
            event = {"current_time": go_time(now), "heartbeat_counter": str(self.heartbeat_counter)}
            await self._send("heartbeats", [event], data=False)

    async def deadline(self) -> None:
        try:
            await asyncio.wait_for(self.subscribed.wait(), SUBSCRIBE_DEADLINE_S)
        except TimeoutError:
            self.sim.record("coinbase.violations", {"rule": "subscribe within 5 s"})
            await self.wire.ws.close(code=1008, message=b"subscribe timeout")

    async def _error(self, message: str, reason: str = "") -> None:
        body = {"type": "error", "message": message}
        if reason:
            body["reason"] = reason
        await self.wire.control(orjson.dumps(body).decode())

    async def handle(self, text: str) -> bool:
        now = time.monotonic()
        self.incoming.append(now)
        while self.incoming and now - self.incoming[0] > 1.0:
            self.incoming.popleft()
        if len(self.incoming) > MESSAGES_PER_S:
            self.sim.record("coinbase.violations", {"rule": "8 messages per second"})
            await self._error("rate limit exceeded")
            await self.wire.ws.close(code=1008, message=b"rate limit exceeded")
            return False
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            await self._error("Failed to parse message", "malformed JSON")
            return True
        kind, channel, products = msg.get("type"), msg.get("channel"), msg.get("product_ids")
        if kind not in ("subscribe", "unsubscribe"):
            await self._error("Failed to subscribe", f"unknown message type {kind!r}")
            return True
        if "channels" in msg or not isinstance(channel, str):
            await self._error("Failed to subscribe", "exactly one channel per message is required")
            return True
        if channel not in CHANNELS:
            await self._error("Failed to subscribe", f"{channel} is not a valid channel")
            return True
        products = products or []
        unknown = [p for p in products if p not in self.sim.market.instruments]
        if unknown:
            await self._error("Failed to subscribe", f"{', '.join(unknown)} is not a valid product")
            return True
        self.sim.record(
            "coinbase.subscribe", {"type": kind, "channel": channel, "products": products}
        )
        current = self.subs.setdefault(channel, set())
        if kind == "subscribe":
            current.update(products)
            self.subscribed.set()
        else:
            current.difference_update(products)
        listing = {c: sorted(p) for c, p in self.subs.items() if p}
        await self._send("subscriptions", [{"subscriptions": listing}], data=False)
        if kind == "subscribe":
            await self._snapshots(channel, products)
        return True

    async def _snapshots(self, channel: str, products: list[str]) -> None:
        if channel == "ticker":
            tickers = [self._ticker(p, self.view.price(p)) for p in products]
            await self._send("ticker", [{"type": "snapshot", "tickers": tickers}])
        elif channel == "market_trades":
            trades = [
                trade_item(self.view.trade(t))
                for p in products
                for t in list(available(self.sim, VENUE, p))[-SNAPSHOT_TRADES:]
            ]
            await self._send("market_trades", [{"type": "snapshot", "trades": trades}])


async def advanced_trade(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    rejected = reject_upgrade(sim, VENUE)
    if rejected is not None:
        return rejected
    ws = websocket()
    await ws.prepare(request)
    wire = Wire(sim, VENUE, ws, request)
    conn = _Connection(sim, wire)
    sim.record("coinbase.connections", {"at": datetime.now(UTC).isoformat()})
    tasks = [
        asyncio.create_task(conn.pump()),
        asyncio.create_task(conn.heartbeats()),
        asyncio.create_task(conn.deadline()),
    ]
    try:
        while not wire.closed:
            text = await wire.receive()
            if text is None or not await conn.handle(text):
                break
    except (ConnectionError, RuntimeError):
        pass
    finally:
        await cancel(*tasks)
        with contextlib.suppress(Exception):
            await ws.close()
    return ws


async def market_trades(request: web.Request) -> web.Response:
    """``GET /coinbase/api/v3/brokerage/market/products/{product_id}/ticker?limit=&start=&end=``
    (public market trades): trades in ``[start, end)`` (UNIX seconds), newest first, at most
    ``limit`` (required, 1-1000), with the best bid and ask."""
    sim = request.app[SIM_KEY]
    fault = await answer_fault(
        sim, VENUE, request, {"error": "RATE_LIMIT_EXCEEDED", "message": "Too many requests"}
    )
    if fault is not None:
        return fault
    product = request.match_info["product_id"]
    if product not in sim.market.instruments:
        return web.json_response(
            {"error": "NOT_FOUND", "message": "ProductID not found", "error_details": product},
            status=404,
        )
    try:
        limit = int(request.query["limit"])
        start = datetime.fromtimestamp(float(request.query.get("start", "0")), UTC)
        end_text = request.query.get("end")
        end = datetime.fromtimestamp(float(end_text), UTC) if end_text else datetime.now(UTC)
    except (KeyError, ValueError):
        return web.json_response(
            {
                "error": "INVALID_ARGUMENT",
                "message": "limit is required; start/end are UNIX seconds",
            },
            status=400,
        )
    if not 1 <= limit <= 1000:
        return web.json_response(
            {"error": "INVALID_ARGUMENT", "message": "limit 1-1000"}, status=400
        )
    trades = available(sim, VENUE, product)
    view = sim.market.venue(VENUE)
    picked = []
    for t in reversed(trades):
        if t.time < start:
            break
        if t.time < end:
            picked.append({**trade_item(view.trade(t)), "bid": "", "ask": "", "exchange": VENUE})
            if len(picked) >= limit:
                break
    price = view.price(product)
    return web.json_response({"trades": picked, "best_bid": _s(price), "best_ask": _s(price)})


def setup(app: web.Application, sim: Simulator) -> None:
    sim.market.venue(VENUE, PROFILE)
    app.router.add_get("/coinbase", advanced_trade)
    app.router.add_get(
        "/coinbase/api/v3/brokerage/market/products/{product_id}/ticker", market_trades
    )
