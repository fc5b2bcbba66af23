"""Binance spot combined-stream WebSocket server (``/binance/stream?streams=a/b``).

Speaks the documented protocol: ``{"stream": name, "data": payload}`` frames, lowercase stream
names, SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS control messages answered with
``{"result": ..., "id": ...}``, server pings every 20 s. Streams served: ``<sym>@trade`` and
``<sym>@bookTicker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from coinstream.marketsim.app import Simulator
from coinstream.marketsim.market import Quote, Trade

log = logging.getLogger(__name__)

_EIGHT = Decimal("0.00000001")


def venue_symbol(symbol: str) -> str:
    """``BTC-USDT`` -> ``BTCUSDT``."""
    return symbol.replace("-", "")


def _dec(value: Decimal) -> str:
    return format(value.quantize(_EIGHT), "f")


def _ms(trade_time: Any) -> int:
    return int(trade_time.timestamp() * 1000)


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


def book_ticker_payload(q: Quote) -> dict[str, Any]:
    return {
        "u": q.update_id,
        "s": venue_symbol(q.symbol),
        "b": _dec(q.bid),
        "B": _dec(q.bid_size),
        "a": _dec(q.ask),
        "A": _dec(q.ask_size),
    }


class _Connection:
    def __init__(self, sim: Simulator, ws: web.WebSocketResponse, streams: set[str]) -> None:
        self.sim = sim
        self.ws = ws
        self.streams = streams
        self.by_symbol = {venue_symbol(s).lower(): s for s in sim.market.instruments}

    def _frames(self, tick: Trade | Quote) -> list[bytes]:
        lower = venue_symbol(tick.symbol).lower()
        if isinstance(tick, Trade) and f"{lower}@trade" in self.streams:
            payload = trade_payload(tick)
            return [orjson.dumps({"stream": f"{lower}@trade", "data": payload})]
        if isinstance(tick, Quote) and f"{lower}@bookTicker" in self.streams:
            payload = book_ticker_payload(tick)
            return [orjson.dumps({"stream": f"{lower}@bookTicker", "data": payload})]
        return []

    async def pump(self) -> None:
        with self.sim.market.subscribe() as sub:
            async for tick in sub:
                for frame in self._frames(tick):
                    await self.ws.send_str(frame.decode())

    async def control(self, text: str) -> None:
        try:
            msg = orjson.loads(text)
            method, req_id = msg["method"], msg.get("id")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await self.ws.send_str('{"code":3,"msg":"Invalid JSON: expected value"}')
            return
        params = msg.get("params") or []
        if method == "SUBSCRIBE":
            self.streams.update(params)
            await self.ws.send_json({"result": None, "id": req_id})
        elif method == "UNSUBSCRIBE":
            self.streams.difference_update(params)
            await self.ws.send_json({"result": None, "id": req_id})
        elif method == "LIST_SUBSCRIPTIONS":
            await self.ws.send_json({"result": sorted(self.streams), "id": req_id})
        else:
            await self.ws.send_json(
                {"code": 2, "msg": f"Invalid request: unknown method {method}", "id": req_id}
            )


async def combined_stream(request: web.Request) -> web.WebSocketResponse:
    from coinstream.marketsim.app import SIM_KEY

    sim = request.app[SIM_KEY]
    streams = {s for s in request.query.get("streams", "").split("/") if s}
    ws = web.WebSocketResponse(heartbeat=20.0, compress=False, max_msg_size=4096)
    await ws.prepare(request)
    conn = _Connection(sim, ws, streams)
    sim.record("binance.connections", {"streams": sorted(streams)})
    pump = asyncio.create_task(conn.pump())
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await conn.control(msg.data)
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await pump
    return ws


def setup(app: web.Application, sim: Simulator) -> None:
    app.router.add_get("/binance/stream", combined_stream)
