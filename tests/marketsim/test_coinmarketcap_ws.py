"""The simulator speaks the CoinMarketCap WebSocket protocol to a real websockets client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from support import aggregator_frames as F

KEY = {"X-CMC_PRO_API_KEY": "cmc-key"}
PEPE = "0x6982508145454ce325ddbe47a25d4ec3d2311933"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"


def url(server: SimServer) -> str:
    return f"{server.ws_url}/coinmarketcap-ws/v1"


def sub(channel: str, params: dict[str, Any], req_id: int = 1, method: str = "subscribe") -> str:
    return json.dumps({"id": req_id, "method": method, "channel": channel, "params": params})


async def until(ws: Any, cond: Callable[[dict[str, Any]], bool], limit: int = 2000) -> list[Any]:
    seen: list[Any] = []
    for _ in range(limit):
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10), parse_float=Decimal)
        seen.append(frame)
        if cond(frame):
            return seen
    raise AssertionError(f"no such frame among {seen[-5:]}")


async def test_welcome_acks_with_counts_duplicates_and_pongs() -> None:
    async with SimServer(Market(rate=0)) as server:
        async with websockets.connect(url(server), additional_headers=KEY) as ws:
            assert json.loads(await ws.recv()) == {"type": "welcome", "ping_interval_ms": 10000}
            await ws.send(F.CMC_SUBSCRIBE_MARKET)
            ack = json.loads(await ws.recv())
            assert ack == {"type": "ack", "id": 1, "code": 0, "msg": "ok",
                           "channel": "market@crypto_latest_price", "sub_count": 3,
                           "sub_limit": 100}  # fmt: skip
            await ws.send(F.CMC_SUBSCRIBE_MARKET)  # the same again
            again = json.loads(await ws.recv())
            assert again["duplicate"] is True and again["sub_count"] == 3
            await ws.send(F.CMC_SUBSCRIBE_KLINE)
            assert json.loads(await ws.recv())["sub_count"] == 4
            await ws.send(F.CMC_UNSUBSCRIBE_ONE)
            assert json.loads(await ws.recv())["sub_count"] == 3
            await ws.send(F.CMC_SUBSCRIBE_KLINE)
            await ws.recv()
            await ws.send(F.CMC_UNSUBSCRIBE_CHANNEL)
            assert json.loads(await ws.recv())["sub_count"] == 3
            await ws.send(F.CMC_UNSUBSCRIBE_ALL)
            assert json.loads(await ws.recv())["sub_count"] == 0
            await ws.send(F.CMC_PING)
            pong = json.loads(await ws.recv())
            assert pong["type"] == "pong" and pong["id"] == 1 and pong["code"] == 0
            server.sim.faults["coinmarketcap-ws.untyped_pong"] = True
            await ws.send('{"id": 2, "method": "ping"}')
            assert set(json.loads(await ws.recv())) == {"id", "code", "ts", "msg"}
    assert server.sim.recordings["coinmarketcap-ws.connections"][0]["key"] == "cmc-key"


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ("not json", "2201"),
        ('{"id": 5, "method": "frobnicate"}', "2202"),
        ('{"id": 5, "channel": "onchain@kline"}', "2204"),
        ('{"id": 5, "method": "subscribe", "channel": "nope@channel", "params": {}}', "2301"),
        ('{"id": 5, "method": "subscribe", "channel": "market@crypto_latest_price", "params": {}}',
         "2401"),
        ('{"id": 5, "method": "subscribe", "channel": "onchain@unique_trader", "params": '
         '{"platform_id": 14, "address": ["0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d"]}}', "2401"),
        ('{"id": 5, "method": "subscribe", "channel": "market@crypto_latest_price", "params": '
         '{"crypto_ids": ["btc"]}}', "2402"),
    ],
)  # fmt: skip
async def test_protocol_errors_have_the_documented_shape(command: str, code: str) -> None:
    async with SimServer(Market(rate=0)) as server:
        async with websockets.connect(url(server), additional_headers=KEY) as ws:
            await ws.recv()
            await ws.send(command)
            error = json.loads(await ws.recv())
    assert error["type"] == "error" and error["status"]["error_code"] == code
    assert set(error["status"]) == set(json.loads(F.CMC_ERROR)["status"])


async def test_subscription_limit_is_error_2303() -> None:
    async with SimServer(Market(rate=0)) as server:
        server.sim.faults["coinmarketcap-ws.sub_limit"] = 2
        async with websockets.connect(url(server), additional_headers=KEY) as ws:
            await ws.recv()
            await ws.send(F.CMC_SUBSCRIBE_MARKET)  # three ids
            error = json.loads(await ws.recv())
    assert error["status"]["error_code"] == "2303" and error["id"] == 1


@pytest.mark.parametrize(("fault", "code"), [(None, 4100), (4101, 4101), (4102, 4102)])
async def test_a_bad_key_is_closed_with_the_documented_code(fault: int | None, code: int) -> None:
    async with SimServer(Market(rate=0)) as server:
        server.sim.faults["coinmarketcap-ws.api_key"] = "right"
        if fault is not None:
            server.sim.faults["coinmarketcap-ws.auth_close"] = fault
        async with websockets.connect(url(server), additional_headers=KEY) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()  # no JSON body: only the close
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code


async def test_too_many_connections_is_4004() -> None:
    async with SimServer(Market(rate=0)) as server:
        server.sim.faults["coinmarketcap-ws.max_connections"] = 1
        async with websockets.connect(url(server), additional_headers=KEY) as first:
            await first.recv()
            async with websockets.connect(url(server), additional_headers=KEY) as second:
                with pytest.raises(ConnectionClosed) as closed:
                    await second.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4004


async def test_every_channel_pushes_from_the_market() -> None:
    """Market prices, token prices, swaps (to both tokens' subscriptions) and klines."""
    async with SimServer(Market(rate=40, seed=9)) as server:
        server.sim.faults["coinmarketcap-ws.market_interval_s"] = 0.2
        async with websockets.connect(url(server), additional_headers=KEY) as ws:
            await ws.recv()
            await ws.send(sub("market@crypto_latest_price", {"crypto_ids": [1, 1027]}, 1))
            both = {"platform_id": 1, "address": [PEPE, WETH]}
            await ws.send(sub("onchain@token_agg_event", both, 2))
            await ws.send(sub("onchain@transaction", both, 3))
            await ws.send(sub("onchain@kline", {**both, "interval": "1s"}, 4))
            channels: set[str] = set()

            def done(f: dict[str, Any]) -> bool:
                if f.get("type") == "data":  # acks name their channel too
                    channels.add(f.get("channel", ""))
                return channels >= {"market@crypto_latest_price", "onchain@token_agg_event",
                                    "onchain@transaction", "onchain@kline"}  # fmt: skip

            frames = await until(ws, done, 5000)
    data = [f for f in frames if f["type"] == "data"]
    market = next(f for f in data if f["channel"] == "market@crypto_latest_price")
    assert set(market["params"]) == {"crypto_ids"} and isinstance(
        market["params"]["crypto_ids"], int
    )
    assert market["data"]["cid"] in (1, 1027) and market["data"]["p"] > 0 and market["ts"] > 10**12
    agg = next(f for f in data if f["channel"] == "onchain@token_agg_event")
    assert isinstance(agg["params"]["address"], str) and agg["data"]["pid"] == 1
    swaps = [f for f in data if f["channel"] == "onchain@transaction"]
    tx = swaps[0]["data"]
    assert {"PEPE", "WETH"} & {tx["t0s"], tx["t1s"]} and tx["tp"] in ("buy", "sell")
    assert "lgid" in tx and tx["tx"].startswith("0x") and len(tx["tx"]) == 66
    pepe_pool = [f for f in swaps if f["data"]["t0s"] == "PEPE"]
    by_tx: dict[str, set[str]] = {}
    for f in pepe_pool:  # a PEPE/WETH swap reaches the PEPE and the WETH subscription
        by_tx.setdefault(f["data"]["tx"], set()).add(f["params"]["address"])
    assert {PEPE, WETH} in by_tx.values()
    kline = next(f for f in data if f["channel"] == "onchain@kline")
    k = kline["data"]
    assert set(k) == {"o", "h", "l", "c", "vu", "ot"} and k["ot"] % 1000 == 0
    assert k["l"] <= min(k["o"], k["c"]) <= max(k["o"], k["c"]) <= k["h"]


async def test_untagged_pushes_and_errors_on_demand() -> None:
    async with SimServer(Market(rate=40, seed=10)) as server:
        server.sim.faults["coinmarketcap-ws.untagged"] = True
        async with websockets.connect(url(server), additional_headers=KEY) as ws:
            await ws.recv()
            await ws.send(sub("onchain@transaction", {"platform_id": 1, "address": [PEPE]}))
            frames = await until(ws, lambda f: f.get("type") == "data")
            assert "channel" not in frames[-1] and "tx" in frames[-1]["data"]
            server.sim.faults["coinmarketcap-ws.error_code"] = "1010"
            await ws.send(F.CMC_PING)
            frames = await until(ws, lambda f: f.get("type") == "error")
    assert frames[-1]["status"]["error_code"] == "1010"
    assert frames[-1]["status"]["category"] == "AUTH"
