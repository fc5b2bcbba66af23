"""Kraken WebSocket v2 server (``/kraken/v2``).

Speaks the documented protocol: a ``status`` message on connect; ``{"method": "subscribe",
"params": {"channel": "ticker"|"trade", "symbol": ["BTC/USD"], "snapshot": true}, "req_id": n}``
answered with one ack per symbol; ``ticker`` snapshot then an update per trade; ``trade``
snapshot of the last 50 trades then updates, with ``trade_id`` a sequence per book; prices and
quantities as JSON numbers; ``{"channel": "heartbeat"}`` about once a second when nothing else
was sent; ``{"method": "ping", "req_id": n}`` answered with ``pong``. Unknown pairs get
``{"error": "Currency pair not supported XBT/EUR", "success": false, ...}``. Faults:
``kraken.*`` (see ``wsfaults``). Prices are the market's as Kraken sees it (``PROFILE``: a
wider basis and a slower feed than Coinbase's; see ``market.VenueView``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
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

VENUE = "kraken"
PROFILE = VenueProfile(basis_bp=4.0, drift_bp=2.0, cadence_s=2.0, jitter_bp=1.5, latency_s=0.12)
HISTORY = 50
HEARTBEAT_INTERVAL_S = 1.0
REST_PAIRS = {"BTC-USD": ("XBTUSD", "XXBTZUSD"), "ETH-USD": ("ETHUSD", "XETHZUSD")}
"""Canonical symbol -> (REST pair name, key of the result object), as the venue names them."""


def kraken_symbol(symbol: str) -> str:
    """``BTC-USD`` -> ``BTC/USD``."""
    return symbol.replace("-", "/")


def _num(value: Decimal) -> orjson.Fragment:
    """A JSON number with exactly the decimal's digits (the venue sends numbers, not strings)."""
    text = format(value.normalize(), "f")
    if "." not in text:
        text += ".0"
    return orjson.Fragment(text.encode())


def _rfc3339(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def trade_item(t: Trade) -> dict[str, Any]:
    return {
        "symbol": kraken_symbol(t.symbol),
        "side": t.side,
        "price": _num(t.price),
        "qty": _num(t.size),
        "ord_type": "limit" if t.trade_id % 3 else "market",
        "trade_id": t.trade_id,
        "timestamp": _rfc3339(t.time),
    }


class _Connection:
    def __init__(self, sim: Simulator, wire: Wire) -> None:
        self.sim = sim
        self.view = sim.market.venue(VENUE)
        self.wire = wire
        self.subs: dict[str, set[str]] = {"ticker": set(), "trade": set()}
        self.quotes: dict[str, Quote] = {}
        self.opens: dict[str, Decimal] = {}
        self.last_sent = time.monotonic()
        self.by_kraken = {kraken_symbol(s): s for s in sim.market.instruments}

    async def _send(
        self, body: dict[str, Any], data: bool = False, sequenced: bool = False
    ) -> None:
        text = orjson.dumps(body).decode()
        if data:
            await self.wire.data(text, sequenced)
        else:
            await self.wire.control(text)
        self.last_sent = time.monotonic()

    def _ticker(self, symbol: str, last: Decimal, now: datetime) -> dict[str, Any]:
        q = self.quotes.get(symbol)
        open_ = self.opens.setdefault(symbol, last)
        change = last - open_
        bid = q.bid if q else last
        ask = q.ask if q else last
        return {
            "symbol": kraken_symbol(symbol),
            "bid": _num(bid),
            "bid_qty": _num(q.bid_size if q else Decimal("1.0")),
            "ask": _num(ask),
            "ask_qty": _num(q.ask_size if q else Decimal("1.0")),
            "last": _num(last),
            "volume": _num(Decimal("997038.98383185")),
            "vwap": _num(last),
            "low": _num(min(open_, last)),
            "high": _num(max(open_, last)),
            "change": _num(change),
            "change_pct": _num(
                (change / open_ * 100).quantize(Decimal("0.01")) if open_ else Decimal(0)
            ),
            "timestamp": _rfc3339(now),
        }

    async def on_tick(self, tick: Trade | Quote) -> None:
        if isinstance(tick, Quote):
            self.quotes[tick.symbol] = tick
            return
        if tick.symbol in self.subs["trade"]:
            body = {"channel": "trade", "type": "update", "data": [trade_item(tick)]}
            await self._send(body, data=True, sequenced=True)
        if tick.symbol in self.subs["ticker"]:
            data = [self._ticker(tick.symbol, tick.price, tick.time)]
            await self._send({"channel": "ticker", "type": "update", "data": data}, data=True)

    async def pump(self) -> None:
        with self.view.subscribe() as feed:
            async for tick in feed:
                await self.on_tick(tick)

    async def heartbeats(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL_S / 4)
            subscribed = self.subs["ticker"] or self.subs["trade"]
            if subscribed and time.monotonic() - self.last_sent >= HEARTBEAT_INTERVAL_S:
                await self._send({"channel": "heartbeat"})

    async def handle(self, text: str) -> None:
        time_in = _rfc3339(datetime.now(UTC))
        try:
            msg = orjson.loads(text)
            method = msg.get("method")
        except (orjson.JSONDecodeError, AttributeError):
            await self._send(
                {
                    "error": "Malformed request",
                    "success": False,
                    "time_in": time_in,
                    "time_out": _rfc3339(datetime.now(UTC)),
                }
            )
            return
        req_id = msg.get("req_id")
        if method == "ping":
            if self.sim.faults.get("kraken.no_pong"):
                self.sim.record("kraken.faults", {"fault": "no_pong"})
                return
            body = {"method": "pong", "time_in": time_in, "time_out": _rfc3339(datetime.now(UTC))}
            if req_id is not None:
                body = {
                    "method": "pong",
                    "req_id": req_id,
                    **{k: body[k] for k in ("time_in", "time_out")},
                }
            await self._send(body)
            return
        if method not in ("subscribe", "unsubscribe"):
            await self._send(
                {
                    "error": f"Method not supported: {method}",
                    "method": method,
                    "success": False,
                    "req_id": req_id,
                    "time_in": time_in,
                    "time_out": _rfc3339(datetime.now(UTC)),
                }
            )
            return
        params = msg.get("params") or {}
        channel = params.get("channel")
        symbols = params.get("symbol") or []
        self.sim.record(
            "kraken.subscribe", {"method": method, "channel": channel, "symbol": symbols}
        )
        for native in symbols:
            await self._subscribe_one(method, channel, native, params, req_id, time_in)

    async def _subscribe_one(
        self,
        method: str,
        channel: Any,
        native: str,
        params: dict[str, Any],
        req_id: Any,
        time_in: str,
    ) -> None:
        time_out = _rfc3339(datetime.now(UTC))
        symbol = self.by_kraken.get(native)
        if channel not in self.subs:
            await self._send(
                {
                    "error": f"Channel {channel} not supported",
                    "method": method,
                    "success": False,
                    "symbol": native,
                    "req_id": req_id,
                    "time_in": time_in,
                    "time_out": time_out,
                }
            )
            return
        if symbol is None:
            await self._send(
                {
                    "error": f"Currency pair not supported {native}",
                    "method": method,
                    "success": False,
                    "symbol": native,
                    "req_id": req_id,
                    "time_in": time_in,
                    "time_out": time_out,
                }
            )
            return
        snapshot = bool(params.get("snapshot", True))
        result: dict[str, Any] = {"channel": channel, "symbol": native, "snapshot": snapshot}
        if channel == "ticker":
            result["event_trigger"] = params.get("event_trigger", "trades")
        if method == "subscribe":
            self.subs[channel].add(symbol)
        else:
            self.subs[channel].discard(symbol)
        await self._send(
            {
                "method": method,
                "result": result,
                "success": True,
                "time_in": time_in,
                "time_out": time_out,
                "req_id": req_id,
            }
        )
        if method != "subscribe" or not snapshot:
            return
        if channel == "ticker":
            data = [self._ticker(symbol, self.view.price(symbol), datetime.now(UTC))]
            await self._send({"channel": "ticker", "type": "snapshot", "data": data}, data=True)
        else:
            recent = list(available(self.sim, VENUE, symbol))[-HISTORY:]
            trades = [trade_item(self.view.trade(t)) for t in recent]
            await self._send({"channel": "trade", "type": "snapshot", "data": trades}, data=True)


async def websocket_v2(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    rejected = reject_upgrade(sim, VENUE)
    if rejected is not None:
        return rejected
    ws = websocket()
    await ws.prepare(request)
    wire = Wire(sim, VENUE, ws, request)
    conn = _Connection(sim, wire)
    sim.record("kraken.connections", {"at": datetime.now(UTC).isoformat()})
    tasks: list[asyncio.Task[Any]] = []
    try:
        connection_id = random.getrandbits(64)  # exceeds int64, as on the venue
        await conn._send(
            {
                "channel": "status",
                "type": "update",
                "data": [
                    {
                        "api_version": "v2",
                        "connection_id": connection_id,
                        "system": "online",
                        "version": "2.0.0",
                    }
                ],
            }
        )
        tasks = [asyncio.create_task(conn.pump()), asyncio.create_task(conn.heartbeats())]
        while not wire.closed:
            text = await wire.receive()
            if text is None:
                break
            await conn.handle(text)
    except (ConnectionError, RuntimeError):
        pass
    finally:
        await cancel(*tasks)
        with contextlib.suppress(Exception):
            await ws.close()
    return ws


def rest_pair(symbol: str) -> tuple[str, str]:
    """(REST pair name, result key): ``XBTUSD``/``XXBTZUSD`` for BTC-USD."""
    return REST_PAIRS.get(symbol) or (symbol.replace("-", ""),) * 2


def _rest_row(t: Trade) -> list[Any]:
    seconds = orjson.Fragment(f"{t.time.timestamp():.4f}".encode())
    side = "b" if t.side == "buy" else "s"
    return [_num(t.price), _num(t.size), seconds, side, "l" if t.trade_id % 3 else "m", "",
            t.trade_id]  # fmt: skip


async def public_trades(request: web.Request) -> web.Response:
    """``GET /kraken/0/public/Trades?pair=XBTUSD&since=T&count=N``: trades after ``since``
    (UNIX seconds, or the nanosecond ``last`` of a previous answer), oldest first, at most
    ``count`` (1-1000, default 1000), and ``last`` to continue from."""
    sim = request.app[SIM_KEY]
    fault = await answer_fault(sim, VENUE, request, {"error": ["EAPI:Rate limit exceeded"]})
    if fault is not None:
        return fault
    wanted = request.query.get("pair", "")
    symbol = next(
        (s for s in sim.market.instruments
         if wanted in (rest_pair(s)[0], rest_pair(s)[1], kraken_symbol(s))),
        None,
    )  # fmt: skip
    if symbol is None:
        return web.json_response({"error": ["EQuery:Unknown asset pair"]})
    try:
        since_text = request.query.get("since", "0")
        since = float(since_text)
        if since > 1e15:  # nanoseconds (a previous answer's ``last``)
            since = int(since_text) / 1e9
        count = int(request.query.get("count", "1000"))
    except ValueError:
        return web.json_response({"error": ["EGeneral:Invalid arguments"]})
    count = max(1, min(count, 1000))
    rows = []
    last_ns = int(since * 1e9)
    view = sim.market.venue(VENUE)
    for t in available(sim, VENUE, symbol):
        if t.time.timestamp() > since:
            rows.append(_rest_row(view.trade(t)))
            last_ns = int(t.time.timestamp() * 1e9)
            if len(rows) >= count:
                break
    key = rest_pair(symbol)[1]
    body = {"error": [], "result": {key: rows, "last": str(last_ns)}}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def setup(app: web.Application, sim: Simulator) -> None:
    sim.market.venue(VENUE, PROFILE)
    app.router.add_get("/kraken/v2", websocket_v2)
    app.router.add_get("/kraken/0/public/Trades", public_trades)
