"""Binance spot combined-stream WebSocket server (``/binance/stream?streams=a/b``).

Speaks the documented protocol: ``{"stream": name, "data": payload}`` frames, lowercase stream
names, SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS control messages answered with
``{"result": ..., "id": ...}``, server pings every 20 s, at most 5 incoming messages per second
(more closes the connection, as the venue does). Streams served: ``<sym>@trade``,
``<sym>@aggTrade``, ``<sym>@bookTicker``, ``<sym>@ticker`` (24hrTicker, every second) and
``<sym>@kline_1m`` (every 2 seconds). Faults: see ``wsfaults`` (``binance.*``), including
``binance.shutdown`` (``serverShutdown`` then close) and ``binance.max_age_s`` (the 24 h limit).
``binance.firehose`` (benchmarks): new connections get trade/bookTicker frames as fast as the
server can send them, independent of the market rate.

REST trade history: ``GET /binance/api/v3/historicalTrades?symbol=BTCUSDT&fromId=N&limit=M``
(limit default 500, at most 1000; without ``fromId`` the newest trades), serving the very
trades the streams sent, with the faults of ``history``.

Prices are the market's as Binance sees it (``PROFILE``: the deepest books, so the smallest
basis and the fastest feed; see ``market.VenueView``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass
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

log = logging.getLogger(__name__)

VENUE = "binance"
PROFILE = VenueProfile(basis_bp=2.0, drift_bp=1.0, cadence_s=0.5, jitter_bp=0.5, latency_s=0.03)
_EIGHT = Decimal("0.00000001")
CONTROL_LIMIT_PER_S = 5
TICKER_INTERVAL_S = 1.0
KLINE_INTERVAL_S = 2.0
CONNECTIONS: web.AppKey[set[Any]] = web.AppKey("binance_connections")


def venue_symbol(symbol: str) -> str:
    """``BTC-USDT`` -> ``BTCUSDT``."""
    return symbol.replace("-", "")


def _dec(value: Decimal) -> str:
    return format(value.quantize(_EIGHT), "f")


def _ms(trade_time: Any) -> int:
    return int(trade_time.timestamp() * 1000)


def _now_ms() -> int:
    return int(time.time() * 1000)


def trade_payload(t: Trade) -> dict[str, Any]:
    ms = _ms(t.time)
    return {
        "e": "trade",
        "E": ms,
        "s": venue_symbol(t.symbol),
        "t": t.trade_id,
        "p": _dec(t.price),
        "q": _dec(t.size),
        "T": ms,
        "m": t.side == "sell",
        "M": True,
    }


def agg_trade_payload(t: Trade) -> dict[str, Any]:
    """One trade per aggregate: the aggregate id is the trade id (both contiguous)."""
    ms = _ms(t.time)
    return {
        "e": "aggTrade",
        "E": ms,
        "s": venue_symbol(t.symbol),
        "a": t.trade_id,
        "p": _dec(t.price),
        "q": _dec(t.size),
        "f": t.trade_id,
        "l": t.trade_id,
        "T": ms,
        "m": t.side == "sell",
        "M": True,
    }


def book_ticker_payload(q: Quote) -> dict[str, Any]:
    return {
        "u": q.update_id,
        "s": venue_symbol(q.symbol),
        "b": _dec(q.bid),
        "B": _dec(q.bid_size),
        "a": _dec(q.ask),
        "A": _dec(q.ask_size),
    }


@dataclass
class _Stats:
    """Rolling figures for the 24hrTicker and kline streams of one symbol (per connection)."""

    open: Decimal
    high: Decimal
    low: Decimal
    last: Decimal
    volume: Decimal = Decimal(0)
    quote_volume: Decimal = Decimal(0)
    count: int = 0
    first_id: int = 0
    last_id: int = 0
    bid: Decimal = Decimal(0)
    ask: Decimal = Decimal(0)
    kline_start: int = 0

    def add(self, t: Trade) -> None:
        self.last = t.price
        self.high = max(self.high, t.price)
        self.low = min(self.low, t.price)
        self.volume += t.size
        self.quote_volume += t.size * t.price
        self.count += 1
        self.first_id = self.first_id or t.trade_id
        self.last_id = t.trade_id


def ticker_payload(symbol: str, s: _Stats, now_ms: int) -> dict[str, Any]:
    change = s.last - s.open
    pct = (change / s.open * 100) if s.open else Decimal(0)
    vwap = (s.quote_volume / s.volume) if s.volume else s.last
    return {
        "e": "24hrTicker",
        "E": now_ms,
        "s": venue_symbol(symbol),
        "p": _dec(change),
        "P": format(pct.quantize(Decimal("0.001")), "f"),
        "w": _dec(vwap),
        "x": _dec(s.open),
        "c": _dec(s.last),
        "Q": _dec(Decimal(0)),
        "b": _dec(s.bid),
        "B": _dec(Decimal(1)),
        "a": _dec(s.ask),
        "A": _dec(Decimal(1)),
        "o": _dec(s.open),
        "h": _dec(s.high),
        "l": _dec(s.low),
        "v": _dec(s.volume),
        "q": _dec(s.quote_volume),
        "O": now_ms - 86_400_000,
        "C": now_ms,
        "F": s.first_id,
        "L": s.last_id,
        "n": s.count,
    }


def kline_payload(symbol: str, s: _Stats, now_ms: int) -> dict[str, Any]:
    start = now_ms - now_ms % 60_000
    return {
        "e": "kline",
        "E": now_ms,
        "s": venue_symbol(symbol),
        "k": {
            "t": start,
            "T": start + 59_999,
            "s": venue_symbol(symbol),
            "i": "1m",
            "f": s.first_id,
            "L": s.last_id,
            "o": _dec(s.open),
            "c": _dec(s.last),
            "h": _dec(s.high),
            "l": _dec(s.low),
            "v": _dec(s.volume),
            "n": s.count,
            "x": False,
            "q": _dec(s.quote_volume),
            "V": "0",
            "Q": "0",
            "B": "0",
        },
    }


class _Connection:
    def __init__(
        self, sim: Simulator, wire: Wire, streams: set[str], registry: set[_Connection]
    ) -> None:
        self.sim = sim
        self.view = sim.market.venue(VENUE)
        self.registry = registry
        self.shutdown_task: asyncio.Task[None] | None = None
        self.wire = wire
        self.ws = wire.ws
        self.streams = streams
        self.by_lower = {venue_symbol(s).lower(): s for s in sim.market.instruments}
        self.stats: dict[str, _Stats] = {}
        self.control_times: deque[float] = deque()
        self.opened = time.monotonic()

    def _stat(self, symbol: str) -> _Stats:
        st = self.stats.get(symbol)
        if st is None:
            p = self.view.price(symbol)
            st = self.stats[symbol] = _Stats(p, p, p, p)
        return st

    async def _emit(self, stream: str, payload: dict[str, Any], sequenced: bool) -> None:
        await self.wire.data(orjson.dumps({"stream": stream, "data": payload}).decode(), sequenced)

    async def on_tick(self, tick: Trade | Quote) -> None:
        lower = venue_symbol(tick.symbol).lower()
        if isinstance(tick, Trade):
            self._stat(tick.symbol).add(tick)
            if f"{lower}@trade" in self.streams:
                await self._emit(f"{lower}@trade", trade_payload(tick), True)
            if f"{lower}@aggTrade" in self.streams:
                await self._emit(f"{lower}@aggTrade", agg_trade_payload(tick), True)
        else:
            st = self._stat(tick.symbol)
            st.bid, st.ask = tick.bid, tick.ask
            if f"{lower}@bookTicker" in self.streams:
                await self._emit(f"{lower}@bookTicker", book_ticker_payload(tick), False)

    async def pump(self) -> None:
        with self.view.subscribe() as feed:
            async for tick in feed:
                await self.on_tick(tick)

    async def firehose(self) -> None:
        """Benchmark mode (``binance.firehose``): trades and book tickers as fast as possible.

        Frames are rendered from templates with contiguous trade ids per symbol, so the sender
        costs little and a benchmark measures the client rather than the market model.
        """
        templates = []
        for stream in sorted(self.streams):
            lower, _, kind = stream.partition("@")
            symbol = self.by_lower.get(lower)
            if symbol is None or kind not in ("trade", "bookTicker"):
                continue
            price = _dec(self.view.price(symbol))
            upper = venue_symbol(symbol)
            if kind == "trade":
                head = f'{{"stream":"{stream}","data":{{"e":"trade","E":'
                tail = f',"s":"{upper}","t":%d,"p":"{price}","q":"0.01000000","T":%d,"m":true,"M":true}}}}'
            else:
                head = f'{{"stream":"{stream}","data":{{"u":'
                tail = f',"s":"{upper}","b":"{price}","B":"1.00000000","a":"{price}","A":"1.00000000"}}}}'
            templates.append((kind, head, tail))
        ids = dict.fromkeys(range(len(templates)), 1_000_000)
        send = self.ws.send_str
        n = 0
        while True:
            ms = _now_ms()
            for i, (kind, head, tail) in enumerate(templates):
                ids[i] += 1
                if kind == "trade":
                    await send(head + str(ms) + tail % (ids[i], ms))
                else:
                    await send(head + str(ids[i]) + tail)
            n += 1
            if n % 16 == 0:
                await asyncio.sleep(0)

    async def periodic(self) -> None:
        """24hrTicker every second, kline_1m every 2 seconds, and the age/shutdown faults."""
        n = 0
        while True:
            await asyncio.sleep(TICKER_INTERVAL_S)
            n += 1
            now = _now_ms()
            for stream in sorted(self.streams):
                lower, _, kind = stream.partition("@")
                symbol = self.by_lower.get(lower)
                if symbol is None:
                    continue
                if kind == "ticker":
                    await self._emit(stream, ticker_payload(symbol, self._stat(symbol), now), False)
                elif kind == "kline_1m" and n % int(KLINE_INTERVAL_S / TICKER_INTERVAL_S) == 0:
                    await self._emit(stream, kline_payload(symbol, self._stat(symbol), now), False)

    async def watch_faults(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            max_age = self.sim.faults.get("binance.max_age_s")
            if max_age is not None and time.monotonic() - self.opened >= float(max_age):
                self.sim.record("binance.faults", {"fault": "max_age"})
                await self.ws.close(code=1000, message=b"connection age limit")
                return
            grace = self.sim.faults.pop("binance.shutdown", None)
            if grace is not None:
                for conn in list(self.registry):
                    conn.shutdown_task = asyncio.create_task(conn.shutdown(float(grace)))

    async def shutdown(self, grace: float) -> None:
        """Send ``serverShutdown``, keep streaming for ``grace`` seconds, then close."""
        self.sim.record("binance.faults", {"fault": "shutdown"})
        shutdown = {"e": "serverShutdown", "E": _now_ms()}
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.wire.control(
                orjson.dumps({"stream": "!serverShutdown", "data": shutdown}).decode()
            )
            await asyncio.sleep(grace)
            await self.ws.close(code=1001, message=b"server shutdown")

    async def control(self, text: str) -> bool:
        """Answer one control message; False if the rate limit was broken (connection closed)."""
        now = time.monotonic()
        self.control_times.append(now)
        while self.control_times and now - self.control_times[0] > 1.0:
            self.control_times.popleft()
        if len(self.control_times) > CONTROL_LIMIT_PER_S:
            self.sim.record("binance.violations", {"rule": "5 messages per second"})
            await self.ws.close(code=1008, message=b"Too many requests")
            return False
        try:
            msg = orjson.loads(text)
            method, req_id = msg["method"], msg.get("id")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await self.wire.control('{"code":3,"msg":"Invalid JSON: expected value"}')
            return True
        params = msg.get("params") or []
        if method == "SUBSCRIBE":
            self.streams.update(params)
            await self.wire.control(orjson.dumps({"result": None, "id": req_id}).decode())
        elif method == "UNSUBSCRIBE":
            self.streams.difference_update(params)
            await self.wire.control(orjson.dumps({"result": None, "id": req_id}).decode())
        elif method == "LIST_SUBSCRIPTIONS":
            body = {"result": sorted(self.streams), "id": req_id}
            await self.wire.control(orjson.dumps(body).decode())
        else:
            error = {"code": 2, "msg": f"Invalid request: unknown method {method}", "id": req_id}
            await self.wire.control(orjson.dumps(error).decode())
        return True


async def combined_stream(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    rejected = reject_upgrade(sim, VENUE)
    if rejected is not None:
        return rejected
    streams = {s for s in request.query.get("streams", "").split("/") if s}
    ws = websocket(max_msg_size=4096)
    await ws.prepare(request)
    wire = Wire(sim, VENUE, ws, request)
    registry = request.app[CONNECTIONS]
    conn = _Connection(sim, wire, streams, registry)
    registry.add(conn)
    sim.record(
        "binance.connections",
        {"streams": sorted(streams), "at": datetime.now(UTC).isoformat()},
    )
    if sim.faults.get("binance.firehose"):
        tasks = [asyncio.create_task(conn.firehose())]
    else:
        tasks = [
            asyncio.create_task(conn.pump()),
            asyncio.create_task(conn.periodic()),
            asyncio.create_task(conn.watch_faults()),
        ]
    try:
        while not wire.closed:
            text = await wire.receive()
            if text is None:
                break
            if not await conn.control(text):
                break
    except (ConnectionError, RuntimeError):
        pass
    finally:
        registry.discard(conn)
        await cancel(*tasks, conn.shutdown_task)
        with contextlib.suppress(Exception):
            await ws.close()
    return ws


def history_item(t: Trade) -> dict[str, Any]:
    """One trade as ``/api/v3/historicalTrades`` lists it (same id as the trade stream)."""
    return {
        "id": t.trade_id,
        "price": _dec(t.price),
        "qty": _dec(t.size),
        "quoteQty": _dec(t.price * t.size),
        "time": _ms(t.time),
        "isBuyerMaker": t.side == "sell",
        "isBestMatch": True,
    }


async def historical_trades(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    fault = await answer_fault(
        sim,
        VENUE,
        request,
        {
            "code": -1003,
            "msg": "Too many requests; current limit of IP is 6000 request weight per 1 MINUTE.",
        },
    )
    if fault is not None:
        return fault
    by_native = {venue_symbol(s): s for s in sim.market.instruments}
    symbol = by_native.get(request.query.get("symbol", ""))
    if symbol is None:
        return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
    try:
        limit = int(request.query.get("limit", "500"))
        from_id = request.query.get("fromId")
        start_id = int(from_id) if from_id is not None else None
    except ValueError:
        return web.json_response(
            {"code": -1100, "msg": "Illegal characters found in parameter."}, status=400
        )
    if not 1 <= limit <= 1000:
        return web.json_response(
            {"code": -1100, "msg": "Illegal characters found in parameter 'limit'."}, status=400
        )
    trades = available(sim, VENUE, symbol)
    if not trades:
        return web.json_response([])
    first = trades[0].trade_id
    if start_id is None:
        start = max(0, len(trades) - limit)
    else:
        start = max(0, start_id - first)
    view = sim.market.venue(VENUE)
    return web.json_response(
        [history_item(view.trade(t)) for t in itertools.islice(trades, start, start + limit)]
    )


def setup(app: web.Application, sim: Simulator) -> None:
    sim.market.venue(VENUE, PROFILE)
    app[CONNECTIONS] = set()
    app.router.add_get("/binance/stream", combined_stream)
    app.router.add_get("/binance/api/v3/historicalTrades", historical_trades)
