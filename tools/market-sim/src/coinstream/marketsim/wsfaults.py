"""Scriptable WebSocket faults shared by the WebSocket simulators (Binance, Coinbase, Kraken,
CoinGecko ``coingecko-ws``, CoinMarketCap ``coinmarketcap-ws``).

Set with ``sim.faults[name] = value`` or ``POST /_sim/faults {"name": ..., "value": ...}``
(``null`` clears). ``<venue>`` is the venue's source name:

- ``<venue>.disconnect`` (int N): the next N connections that send something are dropped
  abruptly (TCP abort, no close frame).
- ``<venue>.reject`` (int N): the next N connection attempts are refused with HTTP 503.
- ``<venue>.silent`` (bool): connections stay open and answer pings but send nothing.
- ``<venue>.no_pong`` (bool): WebSocket pings (and Kraken's ``method: ping``) go unanswered.
- ``<venue>.gap`` (int N): the next N sequenced frames are not sent (Binance and Kraken: trade
  frames, so trade ids jump; Coinbase: any frame, its ``sequence_num`` still advances).
- ``<venue>.duplicate`` (int N): the next N data frames are sent twice.
- ``<venue>.reorder`` (int N): the next N sequenced frames are held back and sent after the
  frame that follows them (out of order).
- ``<venue>.malformed`` (int N): the next N data frames are cut in half (invalid JSON).
- ``<venue>.close_code`` (int code): the next frame is not sent; the server closes the
  connection with this WebSocket close code instead (once).
- ``binance.shutdown`` (float S): every open Binance connection gets ``serverShutdown`` and is
  closed S seconds later.
- ``binance.max_age_s`` (float S): Binance connections are closed when older than S seconds
  (the venue's 24-hour limit, compressed).

Counting faults are decremented as they fire and removed at zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import WSMsgType, web

from coinstream.marketsim.app import Simulator

log = logging.getLogger(__name__)


def take(sim: Simulator, name: str) -> bool:
    """Consume one unit of a counting fault; True if it fired."""
    value = sim.faults.get(name)
    if value is None or value is False:
        return False
    if value is True:
        return True
    try:
        left = int(value)
    except (TypeError, ValueError):
        return False
    if left <= 0:
        sim.faults.pop(name, None)
        return False
    if left == 1:
        sim.faults.pop(name, None)
    else:
        sim.faults[name] = left - 1
    return True


def active(sim: Simulator, name: str) -> bool:
    value = sim.faults.get(name)
    return value is not None and value is not False and value != 0


def reject_upgrade(sim: Simulator, venue: str) -> web.Response | None:
    """An HTTP 503 instead of the WebSocket upgrade while ``<venue>.reject`` lasts."""
    if take(sim, f"{venue}.reject"):
        sim.record(f"{venue}.rejected", {"fault": "reject"})
        return web.Response(status=503, text="service unavailable (simulated)")
    return None


class Wire:
    """One server-side WebSocket with the venue's faults applied to what it sends."""

    def __init__(self, sim: Simulator, venue: str, ws: web.WebSocketResponse, request: web.Request):
        self.sim = sim
        self.venue = venue
        self.ws = ws
        self.request = request
        self._held: str | None = None
        self.sent = 0
        self.closed = False

    def _fault(self, name: str) -> str:
        return f"{self.venue}.{name}"

    @property
    def silent(self) -> bool:
        return active(self.sim, self._fault("silent"))

    async def _write(self, text: str) -> None:
        if self.closed:
            raise ConnectionResetError("connection closed")
        if take(self.sim, self._fault("disconnect")):
            self.abort()
            raise ConnectionResetError("simulated abrupt disconnect")
        code = self.sim.faults.pop(self._fault("close_code"), None)
        if code is not None:
            await self.close(int(code), "simulated close")
            raise ConnectionResetError(f"simulated close {code}")
        await self.ws.send_str(text)
        self.sent += 1

    async def close(self, code: int, reason: str = "") -> None:
        """Close with ``code`` (a close frame, no data after it)."""
        self.closed = True
        self.sim.record(f"{self.venue}.faults", {"fault": "close", "code": code})
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close(code=code, message=reason.encode())

    def abort(self) -> None:
        self.closed = True
        self.sim.record(f"{self.venue}.faults", {"fault": "disconnect"})
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def control(self, text: str) -> None:
        """Acks, statuses, heartbeats: suppressed only by ``silent``."""
        if not self.silent:
            await self._write(text)

    async def data(self, text: str, sequenced: bool = False) -> None:
        """A market-data frame, subject to every fault."""
        if self.silent:
            return
        if sequenced and take(self.sim, self._fault("gap")):
            self.sim.record(f"{self.venue}.faults", {"fault": "gap"})
            return
        if sequenced and self._held is None and take(self.sim, self._fault("reorder")):
            self._held = text
            self.sim.record(f"{self.venue}.faults", {"fault": "reorder"})
            return
        if take(self.sim, self._fault("malformed")):
            self.sim.record(f"{self.venue}.faults", {"fault": "malformed"})
            text = text[: len(text) // 2]
        await self._write(text)
        if take(self.sim, self._fault("duplicate")):
            self.sim.record(f"{self.venue}.faults", {"fault": "duplicate"})
            await self._write(text)
        if self._held is not None and sequenced:
            held, self._held = self._held, None
            await self._write(held)

    async def answer_ping(self, payload: bytes) -> None:
        if active(self.sim, self._fault("no_pong")):
            self.sim.record(f"{self.venue}.faults", {"fault": "no_pong"})
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.pong(payload)

    async def receive(self) -> Any:
        """Next text message; answers pings (unless ``no_pong``); None when closed."""
        while True:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.PING:
                await self.answer_ping(msg.data)
                continue
            if msg.type == WSMsgType.PONG:
                continue
            if msg.type == WSMsgType.TEXT:
                return msg.data
            if msg.type == WSMsgType.BINARY:
                return msg.data.decode(errors="replace")
            return None


def websocket(max_msg_size: int = 65536, heartbeat: float = 20.0) -> web.WebSocketResponse:
    """A server WebSocket that leaves pings to ``Wire`` (so ``no_pong`` can withhold them)."""
    return web.WebSocketResponse(
        heartbeat=heartbeat,
        autoping=False,
        compress=False,
        max_msg_size=max_msg_size,
        writer_limit=1 << 20,  # fewer drain waits: the sender is not the bottleneck
    )


async def cancel(*tasks: asyncio.Task[Any] | None) -> None:
    for task in tasks:
        if task is not None:
            task.cancel()
    for task in tasks:
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await task
