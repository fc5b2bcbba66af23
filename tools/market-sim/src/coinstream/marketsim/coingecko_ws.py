"""CoinGecko WebSocket server (``/coingecko-ws/v1``), protocol-exact per the reference.

- Key: ``x_cg_pro_api_key`` query parameter or ``x-cg-pro-api-key`` header, compared with
  ``sim.faults["coingecko-ws.api_key"]`` when that is set. A wrong or missing key is answered
  as ``coingecko-ws.auth_failure`` says (undocumented upstream, so each form is offered):
  ``"http"`` (default, HTTP 401), ``"disconnect"`` (ActionCable ``{"type":"disconnect",
  "reason":"unauthorized","reconnect":false}``) or ``"code"`` (``{"code":4010,...}``, closed).
- Greeting ``{"code":3000,...,"uuid"}`` then ``{"type":"welcome","sid"}``
  (``coingecko-ws.legacy_greeting``: the welcome only, as older pages show).
- ``{"type":"ping","message":<unix s>}`` every ``coingecko-ws.ping_interval_s`` (3 s) and
  WebSocket pings every 10 s (answered pongs are required, as a third party documents).
- ``subscribe`` -> ``confirm_subscription`` echoing the identifier byte for byte
  (``coingecko-ws.confirm_as_code``: ``{"code":2000,...}`` as one client reports); an unknown
  channel -> ``reject_subscription``. ``message`` with ``set_tokens``/``set_pools``/``unset_*``
  -> one ``{"code":2000}`` ack per target; ``unsubscribe`` -> "... for all tokens/pools".
- 100 subscriptions per channel per socket (``coingecko-ws.max_subscriptions``; G3 counts pool
  x interval x side); beyond it ``{"code":4029,"message":...}`` [inferred]. 10 connections per
  key (``coingecko-ws.max_connections``); beyond it HTTP 429 [inferred].
- Pushes: C1 every ``coingecko-ws.c1_interval_s`` (2 s; about 10 s upstream) per coin and vs
  currency (``usd``), G1 on each swap of a pool holding the token (at most once a second), G2
  per swap (``t`` in ms), G3 the open candle every ``coingecko-ws.g3_interval_s`` (1 s) with
  ``ch``. Keys come in random order. Variants: ``coingecko-ws.legacy`` (C1 without ``vs`` and
  with a float ``t``, G2 with ``ch`` and without ``toq``), ``coingecko-ws.string_numbers`` (G2
  numbers as strings), ``coingecko-ws.nulls`` (N: the next N pushes have a null field).
- Faults from ``wsfaults``: ``coingecko-ws.disconnect``, ``.reject``, ``.silent``,
  ``.no_pong``, ``.duplicate``, ``.malformed``, ``.close_code``.

Recordings: ``coingecko-ws.connections`` (key as received), ``coingecko-ws.commands``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from coinstream.marketsim import onchain
from coinstream.marketsim.app import SIM_KEY, Simulator
from coinstream.marketsim.assets import BY_CG_ID
from coinstream.marketsim.fairvalue import AggregatorProfile
from coinstream.marketsim.market import Trade
from coinstream.marketsim.rest import change_24h_pct, market_cap, price, volume_24h
from coinstream.marketsim.wsfaults import Wire, active, cancel, reject_upgrade, take, websocket

LAG = AggregatorProfile(delay_s=1.0, window_s=2.0)
"""The stream pushes CoinGecko's aggregate about a second behind the market (the REST
endpoints lag more)."""
VENUE = "coingecko-ws"
PATH = "/coingecko-ws/v1"
C1, G1, G2, G3 = "CGSimplePrice", "OnchainSimpleTokenPrice", "OnchainTrade", "OnchainOHLCV"
INTERVALS = {"1s": 1, "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "2h": 7200, "4h": 14_400,
             "8h": 28_800, "12h": 43_200, "1d": 86_400}  # fmt: skip
_OPEN: web.AppKey[list[object]] = web.AppKey("coingecko-ws.open")
"""The open connections (10 per key upstream)."""


def num(value: Decimal | float | int) -> orjson.Fragment:
    """A JSON number with exactly the decimal's digits (the API sends numbers)."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    text = format(d.normalize(), "f")
    return orjson.Fragment(text.encode())


def _fault(sim: Simulator, name: str, default: Any) -> Any:
    value = sim.faults.get(f"{VENUE}.{name}")
    return default if value is None else value


class _Connection:
    def __init__(self, sim: Simulator, wire: Wire) -> None:
        self.sim = sim
        self.wire = wire
        self.channels: set[str] = set()
        self.coins: set[tuple[str, str]] = set()  # (coin id, vs)
        self.tokens: set[tuple[str, str]] = set()  # (network, address)
        self.pools: set[tuple[str, str]] = set()
        self.ohlcv: set[tuple[str, str, str, str]] = set()  # network, pool, interval, side
        self.last_g1: dict[tuple[str, str], float] = {}
        self.book = onchain.CandleBook()
        self.rng = random.Random()

    # -- sending --------------------------------------------------------------------------------
    async def control(self, body: dict[str, Any]) -> None:
        await self.wire.control(orjson.dumps(body).decode())

    async def push(self, body: dict[str, Any]) -> None:
        items = list(body.items())
        self.rng.shuffle(items)  # "Output keys may appear in any order."
        doc = dict(items)
        if take(self.sim, f"{VENUE}.nulls"):
            field = self.rng.choice([k for k in doc if k not in ("c", "ch", "i", "n", "ta", "pa")])
            doc[field] = None
        await self.wire.data(orjson.dumps(doc).decode())

    # -- commands ---------------------------------------------------------------------------
    async def handle(self, text: str) -> None:
        self.sim.record(f"{VENUE}.commands", text)
        try:
            msg = orjson.loads(text)
            name = msg["command"]
            ident = msg["identifier"]
            channel = orjson.loads(ident)["channel"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await self.control({"code": 4000, "message": "Invalid command"})
            return
        if name == "subscribe":
            await self._subscribe(channel, ident)
        elif name == "unsubscribe":
            self._drop_channel(channel)
            what = "pools" if channel in (G2, G3) else "tokens"
            await self.control(
                {"code": 2000, "message": f"Unsubscription is successful for all {what}"}
            )
        elif name == "message":
            if channel not in self.channels:
                await self.control({"code": 4004, "message": f"Not subscribed to {channel}"})
                return
            try:
                data = orjson.loads(msg["data"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                await self.control({"code": 4000, "message": "Invalid data"})
                return
            await self._message(channel, data)
        else:
            await self.control({"code": 4000, "message": f"Unknown command {name}"})

    async def _subscribe(self, channel: str, ident: str) -> None:
        if channel not in (C1, G1, G2, G3):
            await self.control({"type": "reject_subscription", "identifier": ident})
            return
        self.channels.add(channel)
        if active(self.sim, f"{VENUE}.confirm_as_code"):
            await self.control({"code": 2000, "message": "Subscription is successful"})
        else:
            await self.control({"type": "confirm_subscription", "identifier": ident})

    def _drop_channel(self, channel: str) -> None:
        self.channels.discard(channel)
        if channel == C1:
            self.coins.clear()
        elif channel == G1:
            self.tokens.clear()
        elif channel == G2:
            self.pools.clear()
        else:
            self.ohlcv.clear()

    def _count(self, channel: str) -> int:
        return {C1: len(self.coins), G1: len(self.tokens), G2: len(self.pools),
                G3: len(self.ohlcv)}[channel]  # fmt: skip

    async def _message(self, channel: str, data: dict[str, Any]) -> None:
        action = data.get("action")
        limit = int(_fault(self.sim, "max_subscriptions", 100))
        setting = action in ("set_tokens", "set_pools")
        if channel == C1:
            vs = [str(v).lower() for v in data.get("vs_currencies") or ["usd"]]
            targets: list[Any] = [(str(c), v) for c in data.get("coin_id") or [] for v in vs]
            if not setting:  # unset: vs_currencies optional
                targets = [t for t in self.coins if t[0] in set(data.get("coin_id") or [])]
            store: set[Any] = self.coins
        elif channel == G1:
            targets = [
                tuple(str(t).split(":", 1)) for t in data.get("network_id:token_addresses") or []
            ]
            store = self.tokens
        else:
            pools = [
                tuple(str(t).split(":", 1)) for t in data.get("network_id:pool_addresses") or []
            ]
            if channel == G2:
                targets, store = pools, self.pools
            else:
                interval, side = str(data.get("interval")), str(data.get("token", "base"))
                if interval not in INTERVALS or side not in ("base", "quote"):
                    await self.control({"code": 4022, "message": "Invalid interval or token"})
                    return
                targets = [(n, a, interval, side) for n, a in pools]
                store = self.ohlcv
        for t in targets:
            if setting:
                if t not in store and len(store) >= limit:
                    self.sim.record(f"{VENUE}.faults", {"fault": "subscription_limit"})
                    await self.control(
                        {
                            "code": 4029,
                            "message": f"Exceeded the limit of {limit} subscriptions per channel",
                        }
                    )
                    continue
                store.add(t)
                await self.control(
                    {"code": 2000, "message": self._ack(channel, t, "Subscription successful for")}
                )
            else:
                store.discard(t)
                await self.control(
                    {
                        "code": 2000,
                        "message": self._ack(channel, t, "Unsubscription is successful for"),
                    }
                )

    @staticmethod
    def _ack(channel: str, target: tuple[str, ...], text: str) -> str:
        if channel == C1:
            coin, vs = target
            return f"Subscribed to {coin} in {vs}" if text.startswith("Sub") else f"{text} {coin}"
        return f"{text} {':'.join(target)}"

    # -- pushes ---------------------------------------------------------------------------------
    async def simple_prices(self) -> None:
        while True:
            await asyncio.sleep(float(_fault(self.sim, "c1_interval_s", 2.0)))
            legacy = active(self.sim, f"{VENUE}.legacy")
            for coin, vs in sorted(self.coins):
                asset = BY_CG_ID.get(coin)
                if asset is None or vs != "usd":
                    continue
                body: dict[str, Any] = {
                    "c": "C1",
                    "i": coin,
                    "p": num(price(self.sim, asset, LAG)),
                    "pp": num(round(change_24h_pct(self.sim, asset, LAG), 6)),
                    "m": num(round(market_cap(self.sim, asset, LAG), 2)),
                    "v": num(round(volume_24h(self.sim, asset, LAG), 2)),
                }
                if legacy:  # older pages: no vs, float seconds
                    body["t"] = num(round(time.time(), 6))
                else:
                    body["vs"] = vs
                    body["t"] = int(time.time())
                await self.push(body)

    async def on_trade(self, trade: Trade) -> None:
        for pool in onchain.pools_driven_by(trade.symbol):
            network = onchain.NETWORK_IDS[pool.chain]
            swap = onchain.swap(self.sim, pool, trade)
            now = trade.time.timestamp()
            for side, token, token_usd in (("base", pool.base, swap.base_usd),
                                           ("quote", pool.quote, swap.quote_usd)):  # fmt: skip
                for seconds in INTERVALS.values():
                    self.book.observe(
                        f"{pool.address}:{side}", seconds, now, token_usd, swap.volume_usd
                    )
                await self._token_price(network, token, token_usd, now)
            if any(n == network and onchain.same_address(pool.chain, a, pool.address)
                   for n, a in self.pools):  # fmt: skip
                await self._trade(network, swap)

    async def _token_price(
        self, network: str, token: onchain.Token, usd: Decimal, now: float
    ) -> None:
        key = next(((n, a) for n, a in self.tokens
                    if n == network and onchain.same_address(token.chain, a, token.address)), None)  # fmt: skip
        if key is None or now - self.last_g1.get(key, 0.0) < 1.0:
            return
        self.last_g1[key] = now
        await self.push({
            "c": "G1", "n": network, "ta": key[1], "p": num(usd),
            "pp": num(Decimal("0.0457")), "m": num((usd * token.supply).quantize(Decimal("0.01"))),
            "v": num((usd * token.supply / 50).quantize(Decimal("0.01"))), "t": int(now),
        })  # fmt: skip

    async def _trade(self, network: str, swap: onchain.Swap) -> None:
        legacy = active(self.sim, f"{VENUE}.legacy")
        strings = active(self.sim, f"{VENUE}.string_numbers")

        def n(v: Decimal) -> Any:
            return format(v.normalize(), "f") if strings else num(v)

        body: dict[str, Any] = {
            "ch" if legacy else "c": "G2",
            "n": network,
            "pa": swap.pool.address,
            "tx": swap.tx_hash,
            "ty": "b" if swap.side == "buy" else "s",
            "to": n(swap.base_amount),
            "vo": n(swap.volume_usd.quantize(Decimal("1e-12")).normalize()),
            "pc": n(
                (swap.base_usd / onchain.usd(self.sim, onchain.WETH)).quantize(Decimal("1e-16"))
            ),
            "pu": n(swap.base_usd),
            "t": int(swap.trade.time.timestamp() * 1000),
        }
        if not legacy:
            body["toq"] = n(swap.quote_amount)
        await self.push(body)

    async def candles(self) -> None:
        while True:
            await asyncio.sleep(float(_fault(self.sim, "g3_interval_s", 1.0)))
            now = time.time()
            for network, addr, interval, side in sorted(self.ohlcv):
                chain = onchain.chain_of_network(network)
                pool = onchain.find_pool(chain, addr) if chain else None
                if pool is None:
                    continue
                token = pool.base if side == "base" else pool.quote
                c = self.book.current(f"{pool.address}:{side}", INTERVALS[interval], now,
                                      onchain.usd(self.sim, token))  # fmt: skip
                await self.push({
                    "ch": "G3", "n": network, "pa": addr, "to": side, "i": interval,
                    "o": num(c.open), "h": num(c.high), "l": num(c.low), "c": num(c.close),
                    "v": num(c.volume_usd), "t": c.open_time,
                })  # fmt: skip

    async def pings(self) -> None:
        while True:
            await asyncio.sleep(float(_fault(self.sim, "ping_interval_s", 3.0)))
            await self.control({"type": "ping", "message": int(time.time())})

    async def pump(self) -> None:
        with self.sim.market.subscribe() as sub:
            async for tick in sub:
                if isinstance(tick, Trade):
                    await self.on_trade(tick)


def _key(request: web.Request) -> str | None:
    return request.headers.get("x-cg-pro-api-key") or request.query.get("x_cg_pro_api_key")


async def stream(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    rejected = reject_upgrade(sim, VENUE)
    if rejected is not None:
        return rejected
    given = _key(request)
    sim.record(f"{VENUE}.connections", {"key": given, "query": dict(request.query)})
    expected = sim.faults.get(f"{VENUE}.api_key")
    bad_key = expected is not None and given != expected
    mode = str(_fault(sim, "auth_failure", "http"))
    if bad_key and mode == "http":
        sim.record(f"{VENUE}.faults", {"fault": "bad_key", "mode": mode})
        return web.json_response({"error": "Invalid API key"}, status=401)
    open_now = request.app[_OPEN]
    if len(open_now) >= int(_fault(sim, "max_connections", 10)):
        sim.record(f"{VENUE}.faults", {"fault": "connection_limit"})
        return web.json_response({"error": "Too many connections"}, status=429)
    ws = websocket(heartbeat=10.0)
    await ws.prepare(request)
    wire = Wire(sim, VENUE, ws, request)
    conn = _Connection(sim, wire)
    token = object()
    open_now.append(token)
    tasks: list[asyncio.Task[Any]] = []
    try:
        session = uuid.uuid4().hex
        if not active(sim, f"{VENUE}.legacy_greeting"):
            await conn.control({"code": 3000, "message": "Connection established", "uuid": session})
        await conn.control({"type": "welcome", "sid": session})
        if bad_key:
            sim.record(f"{VENUE}.faults", {"fault": "bad_key", "mode": mode})
            if mode == "disconnect":
                await conn.control(
                    {"type": "disconnect", "reason": "unauthorized", "reconnect": False}
                )
            else:
                await conn.control({"code": 4010, "message": "Invalid API key"})
            await ws.close()
            return ws
        tasks = [
            asyncio.create_task(conn.pump()),
            asyncio.create_task(conn.simple_prices()),
            asyncio.create_task(conn.candles()),
            asyncio.create_task(conn.pings()),
        ]
        while not wire.closed:
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
