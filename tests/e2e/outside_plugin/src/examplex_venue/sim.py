"""Simulator route ``/examplex/ws``: the simulated market's trades in examplex's format."""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import WSMsgType, web

from coinstream.marketsim.app import SIM_KEY, Simulator
from coinstream.marketsim.market import Trade


async def _stream(ws: web.WebSocketResponse, sim: Simulator, pairs: set[str]) -> None:
    with sim.market.subscribe() as sub:
        async for tick in sub:
            pair = tick.symbol.replace("-", "_").lower()
            if isinstance(tick, Trade) and pair in pairs:
                frame = {
                    "type": "trade",
                    "pair": pair,
                    "id": tick.trade_id,
                    "px": str(tick.price),
                    "qty": str(tick.size),
                    "side": tick.side,
                    "ts": int(tick.time.timestamp() * 1000),
                }
                await ws.send_str(json.dumps(frame))


async def examplex_ws(request: web.Request) -> web.WebSocketResponse:
    sim = request.app[SIM_KEY]
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    pump: asyncio.Task[None] | None = None
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            break
        body = json.loads(msg.data)
        if body.get("op") == "subscribe" and pump is None:
            sim.record("examplex.subscribe", body)
            await ws.send_str(json.dumps({"type": "subscribed", "pairs": body["pairs"]}))
            pump = asyncio.create_task(_stream(ws, sim, set(body["pairs"])))
    if pump is not None:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await pump
    return ws


def setup(app: web.Application, sim: Simulator) -> None:
    app.router.add_get("/examplex/ws", examplex_ws)
