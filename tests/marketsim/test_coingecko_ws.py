"""The simulator speaks the CoinGecko WebSocket protocol to a real websockets client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from support import aggregator_frames as F

PEPE_WETH = "eth:0xa43fe16908251ee70ef74718545e4fe6c5ccec9f"
WETH = "eth:0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"


def url(server: SimServer) -> str:
    return f"{server.ws_url}/coingecko-ws/v1"


def message(channel: str, data: dict[str, Any]) -> str:
    ident = json.dumps({"channel": channel}, separators=(",", ":"))
    return json.dumps(
        {"command": "message", "identifier": ident, "data": json.dumps(data, separators=(",", ":"))}
    )


def subscribe(channel: str) -> str:
    ident = json.dumps({"channel": channel}, separators=(",", ":"))
    return json.dumps({"command": "subscribe", "identifier": ident})


async def until(ws: Any, cond: Callable[[dict[str, Any]], bool], limit: int = 400) -> list[Any]:
    """Frames up to and including the first one ``cond`` accepts."""
    seen: list[Any] = []
    for _ in range(limit):
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10), parse_float=Decimal)
        seen.append(frame)
        if cond(frame):
            return seen
    raise AssertionError(f"no such frame among {seen[-5:]}")


async def test_greeting_confirmation_and_acks_as_documented() -> None:
    """code 3000 then welcome; the identifier is echoed byte for byte; one ack per target."""
    async with SimServer(Market(rate=0)) as server:
        async with websockets.connect(url(server)) as ws:
            greeting = json.loads(await ws.recv())
            welcome = json.loads(await ws.recv())
            assert greeting["code"] == 3000 and greeting["message"] == "Connection established"
            assert welcome == {"type": "welcome", "sid": greeting["uuid"]}
            await ws.send(F.CG_SUBSCRIBE_C1)
            confirm = json.loads(await ws.recv())
            assert confirm == json.loads(F.CG_CONFIRM)  # identifier string byte for byte
            await ws.send(F.CG_SET_C1)
            assert json.loads(await ws.recv()) == json.loads(F.CG_ACK_C1)
            await ws.send(F.CG_SUBSCRIBE_G1)
            assert json.loads(await ws.recv()) == json.loads(F.CG_CONFIRM_COMPACT)
            await ws.send(F.CG_SET_G1_TWO)
            acks = [json.loads(await ws.recv()) for _ in range(2)]
            assert acks[0] == json.loads(F.CG_ACK_G1)
            assert acks[1]["message"].endswith("eth:0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2")
            await ws.send(F.CG_UNSUBSCRIBE_G1)
            assert json.loads(await ws.recv()) == json.loads(F.CG_ACK_UNSUBSCRIBE_TOKENS)
    commands = server.sim.recordings["coingecko-ws.commands"]
    assert commands[:2] == [F.CG_SUBSCRIBE_C1, F.CG_SET_C1]


async def test_every_documented_client_command_is_understood() -> None:
    """Older C1 sets without vs_currencies, single unsets, OHLCV unsets, unsubscribes."""
    async with SimServer(Market(rate=0)) as server:
        async with websockets.connect(url(server)) as ws:
            await ws.recv(), await ws.recv()
            await ws.send(F.CG_SUBSCRIBE_C1)
            await ws.recv()
            await ws.send(F.CG_SET_C1_OLD)  # vs defaults to usd
            assert [json.loads(await ws.recv())["code"] for _ in range(2)] == [2000, 2000]
            await ws.send(F.CG_UNSET_C1)
            assert json.loads(await ws.recv())["message"] == (
                "Unsubscription is successful for ethereum"
            )
            await ws.send(subscribe("OnchainOHLCV"))
            await ws.recv()
            await ws.send(F.CG_UNSET_G3.replace("unset_pools", "set_pools"))
            await ws.recv()
            await ws.send(F.CG_UNSET_G3)
            assert json.loads(await ws.recv()) == json.loads(F.CG_ACK_UNSET_G3)
            await ws.send(F.CG_UNSUBSCRIBE_G3)
            assert json.loads(await ws.recv()) == json.loads(F.CG_ACK_UNSUBSCRIBE_POOLS)


async def test_pushes_follow_the_market_in_every_channel() -> None:
    """C1 from the market price, G1/G2 from swaps of the pools, G3 candles with ``ch``."""
    faults = {"coingecko-ws.c1_interval_s": 0.2, "coingecko-ws.g3_interval_s": 0.2}
    async with SimServer(Market(rate=30, seed=5)) as server:
        server.sim.faults.update(faults)
        async with websockets.connect(url(server)) as ws:
            await ws.recv(), await ws.recv()
            for channel, data in [
                ("CGSimplePrice", {"coin_id": ["bitcoin"], "vs_currencies": ["usd"], "action": "set_tokens"}),
                ("OnchainSimpleTokenPrice", {"network_id:token_addresses": [WETH], "action": "set_tokens"}),
                ("OnchainTrade", {"network_id:pool_addresses": [PEPE_WETH], "action": "set_pools"}),
                ("OnchainOHLCV", {"network_id:pool_addresses": [PEPE_WETH], "interval": "1m", "token": "base", "action": "set_pools"}),
            ]:  # fmt: skip
                await ws.send(subscribe(channel))
                await ws.send(message(channel, data))
            codes: set[str] = set()
            frames = await until(ws, lambda f: _code(f, codes) >= {"C1", "G1", "G2", "G3"}, 2000)
    by = {c: next(f for f in frames if f.get("c") == c or f.get("ch") == c)
          for c in ("C1", "G1", "G2", "G3")}  # fmt: skip
    c1 = by["C1"]
    assert c1["i"] == "bitcoin" and c1["vs"] == "usd" and isinstance(c1["t"], int)
    assert abs(c1["p"] - Decimal("67000")) < 5000 and c1["m"] > 0
    g1 = by["G1"]
    assert (g1["n"], g1["ta"]) == ("eth", WETH[4:]) and abs(g1["p"] - Decimal(3500)) < 500
    g2 = by["G2"]
    assert g2["pa"] == PEPE_WETH[4:] and g2["ty"] in ("b", "s") and g2["t"] > 10**12  # ms
    assert g2["tx"].startswith("0x") and len(g2["tx"]) == 66
    assert g2["toq"] > 0 and abs(g2["toq"] * Decimal(3500) / g2["to"] - g2["pu"]) < g2["pu"]
    g3 = by["G3"]
    assert g3["ch"] == "G3" and g3["to"] == "base" and g3["i"] == "1m" and g3["t"] % 60 == 0
    assert g3["l"] <= min(g3["o"], g3["c"]) <= max(g3["o"], g3["c"]) <= g3["h"]


def _code(frame: dict[str, Any], seen: set[str]) -> set[str]:
    code = frame.get("ch") or frame.get("c")
    if isinstance(code, str):
        seen.add(code)
    return seen


async def test_legacy_and_string_variants() -> None:
    """Older C1 (no vs, float t), older G2 (``ch``, no toq) and string numbers."""
    async with SimServer(Market(rate=40, seed=6)) as server:
        server.sim.faults.update(
            {"coingecko-ws.legacy": True, "coingecko-ws.string_numbers": True,
             "coingecko-ws.c1_interval_s": 0.2, "coingecko-ws.legacy_greeting": True}
        )  # fmt: skip
        async with websockets.connect(url(server)) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"  # no code 3000 first
            await ws.send(subscribe("CGSimplePrice"))
            await ws.send(F.CG_SET_C1)
            await ws.send(subscribe("OnchainTrade"))
            await ws.send(message("OnchainTrade", {"network_id:pool_addresses": [PEPE_WETH], "action": "set_pools"}))  # fmt: skip
            seen: set[str] = set()
            frames = await until(ws, lambda f: _code(f, seen) >= {"C1", "G2"}, 2000)
    c1 = next(f for f in frames if f.get("c") == "C1")
    assert "vs" not in c1 and isinstance(c1["t"], Decimal) and c1["t"] % 1 != 0
    g2 = next(f for f in frames if f.get("ch") == "G2")
    assert "c" not in g2 and "toq" not in g2 and isinstance(g2["pu"], str)


async def test_the_confirmation_may_come_as_a_code_2000() -> None:
    async with SimServer(Market(rate=0)) as server:
        server.sim.faults["coingecko-ws.confirm_as_code"] = True
        async with websockets.connect(url(server)) as ws:
            await ws.recv(), await ws.recv()
            await ws.send(F.CG_SUBSCRIBE_C1)
            assert json.loads(await ws.recv())["code"] == 2000


async def test_json_pings_arrive_and_an_unknown_channel_is_rejected() -> None:
    async with SimServer(Market(rate=0)) as server:
        server.sim.faults["coingecko-ws.ping_interval_s"] = 0.1
        async with websockets.connect(url(server)) as ws:
            await ws.recv(), await ws.recv()
            ping = json.loads(await ws.recv())
            assert ping["type"] == "ping" and isinstance(ping["message"], int)
            await ws.send(subscribe("OnchainPoolStats"))
            frames = await until(ws, lambda f: f.get("type") == "reject_subscription")
            assert frames[-1]["identifier"] == '{"channel":"OnchainPoolStats"}'


@pytest.mark.parametrize("mode", ["http", "disconnect", "code"])
async def test_a_bad_key_is_refused_in_the_configured_way(mode: str) -> None:
    async with SimServer(Market(rate=0)) as server:
        server.sim.faults.update(
            {"coingecko-ws.api_key": "right", "coingecko-ws.auth_failure": mode}
        )
        if mode == "http":
            with pytest.raises(InvalidStatus) as info:
                async with websockets.connect(
                    url(server), additional_headers={"x-cg-pro-api-key": "wrong"}
                ):
                    pass  # pragma: no cover
            assert info.value.response.status_code == 401
            return
        async with websockets.connect(f"{url(server)}?x_cg_pro_api_key=wrong") as ws:
            frames = [json.loads(m) async for m in ws]
        expected = (
            {"type": "disconnect", "reason": "unauthorized", "reconnect": False}
            if mode == "disconnect"
            else {"code": 4010, "message": "Invalid API key"}
        )
        assert frames[-1] == expected
        # the right key, in the header or the query, is accepted
        for kw in ({"additional_headers": {"x-cg-pro-api-key": "right"}}, {}):
            target = url(server) if kw else f"{url(server)}?x_cg_pro_api_key=right"
            async with websockets.connect(target, **kw) as ws:
                assert json.loads(await ws.recv())["code"] == 3000
        keys = [c["key"] for c in server.sim.recordings["coingecko-ws.connections"]]
        assert keys == ["wrong", "right", "right"]


async def test_subscription_limit_per_channel_per_socket() -> None:
    async with SimServer(Market(rate=0)) as server:
        server.sim.faults["coingecko-ws.max_subscriptions"] = 2
        async with websockets.connect(url(server)) as ws:
            await ws.recv(), await ws.recv()
            await ws.send(F.CG_SUBSCRIBE_C1)
            await ws.recv()
            await ws.send(message("CGSimplePrice", {"coin_id": ["bitcoin", "ethereum", "solana"], "vs_currencies": ["usd"], "action": "set_tokens"}))  # fmt: skip
            replies = [json.loads(await ws.recv()) for _ in range(3)]
    assert [r["code"] for r in replies] == [2000, 2000, 4029]


async def test_connection_limit_per_key() -> None:
    async with SimServer(Market(rate=0)) as server:
        server.sim.faults["coingecko-ws.max_connections"] = 1
        async with websockets.connect(url(server)):
            with pytest.raises(InvalidStatus) as info:
                async with websockets.connect(url(server)):
                    pass  # pragma: no cover
            assert info.value.response.status_code == 429


async def test_malformed_frames_and_close_codes() -> None:
    async with SimServer(Market(rate=0)) as server:
        server.sim.faults.update({"coingecko-ws.c1_interval_s": 0.1, "coingecko-ws.malformed": 1})
        async with websockets.connect(url(server)) as ws:
            await ws.recv(), await ws.recv()
            await ws.send(F.CG_SUBSCRIBE_C1)
            await ws.send(F.CG_SET_C1)
            for _ in range(20):
                text = await ws.recv()
                if text.startswith('{"') and not text.endswith("}"):
                    break
            else:
                raise AssertionError("no malformed frame")
            server.sim.faults["coingecko-ws.close_code"] = 4001
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
