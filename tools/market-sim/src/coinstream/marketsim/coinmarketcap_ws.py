"""CoinMarketCap WebSocket server (``/coinmarketcap-ws/v1``), protocol-exact per the reference.

- Key: the ``X-CMC_PRO_API_KEY`` upgrade header, compared with
  ``sim.faults["coinmarketcap-ws.api_key"]`` when that is set. A wrong or missing key is
  accepted at the HTTP level and closed with 4100 and no JSON body (``coinmarketcap-ws.
  auth_close`` = 4101 or 4102 for a disabled key or a plan without WebSocket). More than
  ``coinmarketcap-ws.max_connections`` (10) open connections: closed with 4004.
- ``{"type":"welcome","ping_interval_ms":10000}`` on connect (approximation: only the type and
  ``ping_interval_ms`` are documented).
- ``subscribe`` / ``unsubscribe`` / ``unsubscribe_all`` -> ``{"type":"ack","id","code":0,"msg":"ok",
  "channel","sub_count","sub_limit"}`` (``"duplicate":true`` on a repeat, count unchanged);
  each id or address is one subscription, at most ``coinmarketcap-ws.sub_limit`` (100); errors
  as ``{"type":"error","id","status":{...,"error_code":"2303",...}}`` (string codes): 2201 bad
  JSON, 2202 unknown method, 2204 missing field, 2301 unknown channel, 2303 subscription limit,
  2401 missing param, 2402 invalid param. ``coinmarketcap-ws.error_code`` (e.g. ``"1010"``)
  sends that error once.
- ``ping`` -> ``{"type":"pong","id","code":0,"ts"}`` (``coinmarketcap-ws.untyped_pong``: the
  untyped ``{"id","code":0,"ts","msg":"PONG"}`` one client saw).
- Pushes ``{"type":"data","channel","params","data","ts"}`` with a scalar ``params.address``:
  ``market@crypto_latest_price`` every ``coinmarketcap-ws.market_interval_s`` (1 s; 5-15 s
  upstream), ``onchain@token_agg_event`` and ``onchain@transaction`` per swap (a swap goes to
  the subscriptions of both its tokens, as upstream), ``onchain@kline`` per closed interval.
  ``coinmarketcap-ws.untagged``: on-chain pushes without ``channel``.
- Faults from ``wsfaults``: ``coinmarketcap-ws.disconnect``, ``.reject``, ``.silent``,
  ``.no_pong`` (WebSocket and ``ping`` method), ``.duplicate``, ``.malformed``,
  ``.close_code`` (e.g. 1001 write idle timeout, 1011, 4100).

Recordings: ``coinmarketcap-ws.connections`` (key as received), ``coinmarketcap-ws.commands``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from coinstream.marketsim import onchain
from coinstream.marketsim.app import SIM_KEY, Simulator
from coinstream.marketsim.assets import BY_CMC_ID
from coinstream.marketsim.coingecko_ws import num
from coinstream.marketsim.fairvalue import AggregatorProfile
from coinstream.marketsim.market import Trade
from coinstream.marketsim.rest import change_24h_pct, market_cap, price, volume_24h
from coinstream.marketsim.wsfaults import Wire, active, cancel, reject_upgrade, websocket

LAG = AggregatorProfile(delay_s=1.0, window_s=2.0)
"""The stream pushes CoinMarketCap's aggregate about a second behind the market (the REST
endpoints lag more)."""
VENUE = "coinmarketcap-ws"
PATH = "/coinmarketcap-ws/v1"
MARKET = "market@crypto_latest_price"
AGG, SWAPS, KLINE = "onchain@token_agg_event", "onchain@transaction", "onchain@kline"
ONCHAIN = {AGG, SWAPS, KLINE, "onchain@liquidity_event", "onchain@token_metric",
           "onchain@unique_trader", "onchain@holders_metrics"}  # fmt: skip
NEEDS_INTERVAL = {KLINE, "onchain@unique_trader"}
_INTERVAL = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_OPEN: web.AppKey[list[object]] = web.AppKey("coinmarketcap-ws.open")
ERRORS = {
    "1010": ("AUTH", "Monthly credits exceeded."),
    "2201": ("PROTOCOL", "Invalid request format."),
    "2202": ("PROTOCOL", "Unknown method."),
    "2204": ("PROTOCOL", "Missing required field."),
    "2301": ("PROTOCOL", "Channel does not exist."),
    "2303": ("PROTOCOL", "Subscription limit reached."),
    "2401": ("PROTOCOL", "Missing required param for channel."),
    "2402": ("PROTOCOL", "Invalid param."),
}


def interval_s(text: str) -> int | None:
    m = _INTERVAL.match(text)
    return int(m.group(1)) * _UNIT_S[m.group(2)] if m else None


def _fault(sim: Simulator, name: str, default: Any) -> Any:
    value = sim.faults.get(f"{VENUE}.{name}")
    return default if value is None else value


def _ms() -> int:
    return int(time.time() * 1000)


Sub = tuple[str, Any, str | None]
"""(channel, crypto id or (platform id, address), interval)."""


class _Connection:
    def __init__(self, sim: Simulator, wire: Wire) -> None:
        self.sim = sim
        self.wire = wire
        self.subs: set[Sub] = set()
        self.book = onchain.CandleBook()

    async def send(self, body: dict[str, Any], data: bool = False) -> None:
        text = orjson.dumps(body).decode()
        if data:
            await self.wire.data(text)
        else:
            await self.wire.control(text)

    async def error(self, code: str, req_id: Any, detail: str) -> None:
        category, message = ERRORS.get(code, ("PROTOCOL", "Error."))
        status = {
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "error_code": code,
            "category": category,
            "error_message": message,
            "error_detail": detail,
        }
        body: dict[str, Any] = {"type": "error"}
        if req_id is not None:
            body["id"] = req_id
        body["status"] = status
        await self.send(body)

    # -- commands ---------------------------------------------------------------------------
    async def handle(self, text: str) -> None:
        self.sim.record(f"{VENUE}.commands", text)
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            await self.error("2201", None, "The message is not JSON.")
            return
        if not isinstance(msg, dict) or "method" not in msg:
            await self.error("2204", None, "Field 'method' is required.")
            return
        req_id, method = msg.get("id"), msg.get("method")
        if method == "ping":
            if active(self.sim, f"{VENUE}.no_pong"):
                self.sim.record(f"{VENUE}.faults", {"fault": "no_pong"})
                return
            if active(self.sim, f"{VENUE}.untyped_pong"):
                await self.send({"id": req_id, "code": 0, "ts": _ms(), "msg": "PONG"})
            else:
                await self.send({"type": "pong", "id": req_id, "code": 0, "ts": _ms()})
        elif method == "unsubscribe_all":
            self.subs.clear()
            await self.ack(req_id, None)
        elif method in ("subscribe", "unsubscribe"):
            await self.subscribe(msg, method == "subscribe")
        else:
            await self.error("2202", req_id, f"Method '{method}' is not supported.")

    def _expand(self, channel: str, params: dict[str, Any]) -> list[Sub] | str:
        """The subscriptions a command names, or the missing/invalid param."""
        if channel == MARKET:
            ids = params.get("crypto_ids")
            if ids is None:
                return "Param 'crypto_ids' is required for channel 'market@crypto_latest_price'."
            ids = ids if isinstance(ids, list) else [ids]
            if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
                return "!Param 'crypto_ids' must be an array of integers."
            return [(MARKET, i, None) for i in ids]
        key = "pool_address" if channel == "onchain@pool_metric" else "address"
        pid, addrs = params.get("platform_id"), params.get(key)
        if pid is None or addrs is None:
            return f"Params 'platform_id' and '{key}' are required for channel '{channel}'."
        interval = params.get("interval")
        if channel in NEEDS_INTERVAL and interval is None:
            return f"Param 'interval' is required for channel '{channel}'."
        if interval is not None and interval_s(str(interval)) is None:
            return f"!Param 'interval' {interval!r} is not supported."
        addrs = addrs if isinstance(addrs, list) else [addrs]
        if not isinstance(pid, int) or not all(isinstance(a, str) for a in addrs):
            return "!Param 'platform_id' must be an integer and 'address' strings."
        return [(channel, (pid, a), str(interval) if interval else None) for a in addrs]

    async def subscribe(self, msg: dict[str, Any], adding: bool) -> None:
        req_id, channel = msg.get("id"), msg.get("channel")
        if not isinstance(channel, str):
            await self.error("2204", req_id, "Field 'channel' is required.")
            return
        if channel != MARKET and channel not in ONCHAIN:
            await self.error("2301", req_id, f"Channel '{channel}' does not exist.")
            return
        params = msg.get("params")
        if params is None and not adding:  # a whole channel
            self.subs = {s for s in self.subs if s[0] != channel}
            await self.ack(req_id, channel)
            return
        wanted = self._expand(channel, params if isinstance(params, dict) else {})
        if isinstance(wanted, str):
            code = "2402" if wanted.startswith("!") else "2401"
            await self.error(code, req_id, wanted.lstrip("!"))
            return
        if not adding:
            self.subs -= set(wanted)
            await self.ack(req_id, channel)
            return
        new = [s for s in dict.fromkeys(wanted) if s not in self.subs]
        limit = int(_fault(self.sim, "sub_limit", 100))
        if len(self.subs) + len(new) > limit:
            self.sim.record(f"{VENUE}.faults", {"fault": "subscription_limit"})
            await self.error("2303", req_id, f"At most {limit} subscriptions per connection.")
            return
        self.subs.update(new)
        await self.ack(req_id, channel, duplicate=not new)

    async def ack(self, req_id: Any, channel: str | None, duplicate: bool = False) -> None:
        body: dict[str, Any] = {"type": "ack", "id": req_id, "code": 0, "msg": "ok"}
        if channel is not None:
            body["channel"] = channel
        if duplicate:
            body["duplicate"] = True
        body["sub_count"] = len(self.subs)
        body["sub_limit"] = int(_fault(self.sim, "sub_limit", 100))
        await self.send(body)

    # -- pushes ---------------------------------------------------------------------------------
    async def push(self, channel: str, params: dict[str, Any], data: dict[str, Any]) -> None:
        body: dict[str, Any] = {"type": "data"}
        if channel == MARKET or not active(self.sim, f"{VENUE}.untagged"):
            body["channel"] = channel
        body.update(params=params, data=data, ts=_ms())
        await self.send(body, data=True)

    async def market(self) -> None:
        while True:
            await asyncio.sleep(float(_fault(self.sim, "market_interval_s", 1.0)))
            for cid in sorted(c for ch, c, _ in self.subs if ch == MARKET):
                asset = BY_CMC_ID.get(cid)
                if asset is None:
                    continue
                change = round(change_24h_pct(self.sim, asset, LAG), 6)
                await self.push(MARKET, {"crypto_ids": cid}, {
                    "cid": cid, "p": num(price(self.sim, asset, LAG)),
                    "vu": num(round(volume_24h(self.sim, asset, LAG), 2)),
                    "mc": num(round(market_cap(self.sim, asset, LAG), 2)), "cs": asset.circulating,
                    "p24h": num(change), "p7d": num(round(change * 1.5, 6)), "fdv24h": num(change),
                })  # fmt: skip

    def _subscribed(self, channel: str, chain: str, token: onchain.Token) -> list[Sub]:
        pid = onchain.PLATFORM_IDS[chain]
        return [
            s for s in self.subs
            if s[0] == channel and s[1][0] == pid
            and onchain.same_address(chain, s[1][1], token.address)
        ]  # fmt: skip

    async def on_trade(self, trade: Trade) -> None:
        for pool in onchain.pools_driven_by(trade.symbol):
            swap = onchain.swap(self.sim, pool, trade)
            pid = onchain.PLATFORM_IDS[pool.chain]
            ts = int(trade.time.timestamp() * 1000)
            for token, usd in ((pool.base, swap.base_usd), (pool.quote, swap.quote_usd)):
                for sub in self._subscribed(AGG, pool.chain, token):
                    liquidity = pool.liquidity_usd.quantize(Decimal("0.01"))
                    await self.push(AGG, {"platform_id": pid, "address": sub[1][1]}, {
                        "pid": pid, "a": token.address, "ap": num(usd), "p": num(usd),
                        "lu": num(liquidity), "ts": ts,
                    })  # fmt: skip
                for sub in self._subscribed(SWAPS, pool.chain, token):  # both tokens: twice
                    await self.push(SWAPS, {"platform_id": pid, "address": sub[1][1]},
                                    self._transaction(swap, pid, ts))  # fmt: skip
                for sub in [s for s in self.subs if s[0] == KLINE]:
                    if s_matches(sub, pid, pool.chain, token):
                        await self._kline(sub, pid, trade, usd, swap.volume_usd)

    async def _kline(
        self, sub: Sub, pid: int, trade: Trade, usd: Decimal, volume_usd: Decimal
    ) -> None:
        """Klines are pushed when their interval closes (the first trade after it)."""
        seconds = interval_s(str(sub[2])) or 60
        key = f"{sub[1][1]}:{sub[2]}"
        closed = self.book.observe(key, seconds, trade.time.timestamp(), usd, volume_usd)
        if closed is None:
            return
        params = {"platform_id": pid, "address": sub[1][1], "interval": sub[2]}
        data = {
            "o": num(closed.open),
            "h": num(closed.high),
            "l": num(closed.low),
            "c": num(closed.close),
            "vu": num(closed.volume_usd.quantize(Decimal("1e-9"))),
            "ot": closed.open_time * 1000,
        }
        await self.push(KLINE, params, data)

    @staticmethod
    def _transaction(swap: onchain.Swap, pid: int, ts: int) -> dict[str, Any]:
        pool = swap.pool
        data: dict[str, Any] = {
            "pid": pid, "f": "0xdb1d10011ad0ff90774d0c6bb92e5c5c8b4461f7", "bh": swap.block,
            "tp": swap.side, "pa": pool.address, "t0a": pool.base.address,
            "t1a": pool.quote.address, "t0s": pool.base.symbol, "t1s": pool.quote.symbol,
            "vu": num(swap.volume_usd.quantize(Decimal("1e-12")).normalize()),
            "q": num(swap.base_usd), "t0pu": num(swap.base_usd), "t1pu": num(swap.quote_usd),
            "tx": swap.tx_hash, "ts": ts, "a0": num(swap.base_amount),
            "a1": num(swap.quote_amount), "qi": 0, "tii": 0, "ex": False, "txtp": 0,
        }  # fmt: skip
        data["iix" if pool.chain == "solana" else "lgid"] = swap.log_index
        return data

    async def pump(self) -> None:
        with self.sim.market.subscribe() as sub:
            async for tick in sub:
                if isinstance(tick, Trade):
                    await self.on_trade(tick)


def s_matches(sub: Sub, pid: int, chain: str, token: onchain.Token) -> bool:
    return bool(sub[1][0] == pid and onchain.same_address(chain, sub[1][1], token.address))


async def stream(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    rejected = reject_upgrade(sim, VENUE)
    if rejected is not None:
        return rejected
    given = request.headers.get("X-CMC_PRO_API_KEY")
    sim.record(f"{VENUE}.connections", {"key": given, "query": dict(request.query)})
    expected = sim.faults.get(f"{VENUE}.api_key")
    ws = websocket(heartbeat=20.0)
    await ws.prepare(request)
    wire = Wire(sim, VENUE, ws, request)
    if expected is not None and given != expected:
        code = int(_fault(sim, "auth_close", 4100))
        sim.record(f"{VENUE}.faults", {"fault": "bad_key", "code": code})
        await ws.close(code=code)  # no JSON body, as documented
        return ws
    open_now = request.app[_OPEN]
    if len(open_now) >= int(_fault(sim, "max_connections", 10)):
        sim.record(f"{VENUE}.faults", {"fault": "connection_limit", "code": 4004})
        await ws.close(code=4004)
        return ws
    conn = _Connection(sim, wire)
    token = object()
    open_now.append(token)
    tasks: list[asyncio.Task[Any]] = []
    try:
        await conn.send({"type": "welcome", "ping_interval_ms": 10_000})
        tasks = [asyncio.create_task(conn.pump()), asyncio.create_task(conn.market())]
        while not wire.closed:
            code = sim.faults.pop(f"{VENUE}.error_code", None)
            if code is not None:
                await conn.error(str(code), None, "Simulated error.")
            text = await wire.receive()
            if text is None:
                break
            await conn.handle(text)
    except (ConnectionError, RuntimeError):
        pass
    finally:
        open_now.remove(token)
        await cancel(*tasks)
        with contextlib.suppress(Exception):
            await ws.close()
    return ws


def setup(app: web.Application, sim: Simulator) -> None:
    app[_OPEN] = []
    app.router.add_get(PATH, stream)
