"""The simulator speaks Binance's combined-stream protocol to a real websockets client."""

import asyncio
import json
from decimal import Decimal
from itertools import pairwise

import pytest
import websockets

from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer


async def test_combined_stream_trade_and_book_ticker_frames() -> None:
    async with SimServer(Market(rate=50, seed=1)) as server:
        url = f"{server.ws_url}/binance/stream?streams=btcusdt@trade/btcusdt@bookTicker"
        async with websockets.connect(url) as ws:
            frames = [json.loads(await ws.recv()) for _ in range(6)]
    streams = {f["stream"] for f in frames}
    assert streams == {"btcusdt@trade", "btcusdt@bookTicker"}
    trade = next(f["data"] for f in frames if f["stream"] == "btcusdt@trade")
    assert trade["e"] == "trade" and trade["s"] == "BTCUSDT"
    assert isinstance(trade["p"], str) and Decimal(trade["p"]) > 0
    assert isinstance(trade["T"], int) and trade["T"] > 1_600_000_000_000
    book = next(f["data"] for f in frames if f["stream"] == "btcusdt@bookTicker")
    assert "e" not in book and Decimal(book["b"]) < Decimal(book["a"])


async def test_subscribe_control_message_is_acknowledged() -> None:
    async with SimServer(Market(rate=20, seed=2)) as server:
        async with websockets.connect(f"{server.ws_url}/binance/stream") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@trade"], "id": 7}))
            assert json.loads(await ws.recv()) == {"result": None, "id": 7}
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 8}))
            msgs = [json.loads(await ws.recv()) for _ in range(5)]
    assert {"result": ["ethusdt@trade"], "id": 8} in msgs
    assert any(m.get("stream") == "ethusdt@trade" for m in msgs)


async def test_set_price_moves_the_market_and_slack_records_posts() -> None:
    import aiohttp

    async with SimServer(Market(rate=0, seed=3)) as server, aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.base_url}/_sim/price", json={"symbol": "BTC-USDT", "price": "80000"}
        ) as r:
            assert r.status == 200
        assert server.sim.market.price("BTC-USDT") == Decimal("80000")
        async with http.post(f"{server.base_url}/slack/webhook/T0/B0/x", json={"text": "hi"}) as r:
            assert r.status == 200 and await r.text() == "ok"
        async with http.post(f"{server.base_url}/slack/webhook/T0/B0/x", json={}) as r:
            assert r.status == 400 and await r.text() == "no_text"
        async with http.get(f"{server.base_url}/_sim/recordings/slack") as r:
            assert [m["body"]["text"] for m in await r.json()] == ["hi"]


async def test_agg_trade_ticker_and_kline_streams() -> None:
    """aggTrade per trade, 24hrTicker every second and kline_1m every two seconds."""
    streams = "btcusdt@aggTrade/btcusdt@ticker/btcusdt@kline_1m"
    async with SimServer(Market(rate=20, seed=4)) as server:
        async with websockets.connect(f"{server.ws_url}/binance/stream?streams={streams}") as ws:
            seen: dict[str, dict] = {}
            while len(seen) < 3:
                frame = json.loads(await ws.recv())
                seen.setdefault(frame["stream"], frame["data"])
    agg = seen["btcusdt@aggTrade"]
    assert agg["e"] == "aggTrade" and agg["f"] <= agg["a"] <= agg["l"]
    ticker = seen["btcusdt@ticker"]
    assert ticker["e"] == "24hrTicker" and ticker["s"] == "BTCUSDT"
    assert Decimal(ticker["l"]) <= Decimal(ticker["c"]) <= Decimal(ticker["h"])
    kline = seen["btcusdt@kline_1m"]
    assert kline["e"] == "kline" and kline["k"]["i"] == "1m"
    assert kline["k"]["T"] - kline["k"]["t"] == 59_999


async def test_server_shutdown_fault_announces_then_closes() -> None:
    """binance.shutdown sends serverShutdown and closes the connection after the grace."""
    async with SimServer(Market(rate=20, seed=5)) as server:
        async with websockets.connect(
            f"{server.ws_url}/binance/stream?streams=btcusdt@trade"
        ) as ws:
            await ws.recv()
            server.sim.faults["binance.shutdown"] = 0.2
            frames = []
            with pytest.raises(websockets.ConnectionClosed) as info:
                while True:
                    frames.append(json.loads(await ws.recv()))
    shutdown = [f for f in frames if f.get("stream") == "!serverShutdown"]
    assert shutdown and shutdown[0]["data"]["e"] == "serverShutdown"
    assert frames.index(shutdown[0]) < len(frames) - 1  # data kept flowing during the grace
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001


async def test_gap_duplicate_and_reorder_faults_on_trade_ids() -> None:
    """binance.gap skips trade ids, .duplicate repeats a frame, .reorder swaps two frames."""
    async with SimServer(Market(rate=50, seed=6)) as server:
        async with websockets.connect(
            f"{server.ws_url}/binance/stream?streams=btcusdt@trade"
        ) as ws:
            ids = [json.loads(await ws.recv())["data"]["t"] for _ in range(3)]
            server.sim.faults["binance.gap"] = 2
            server.sim.faults["binance.duplicate"] = 1
            ids += [json.loads(await ws.recv())["data"]["t"] for _ in range(4)]
            server.sim.faults["binance.reorder"] = 1
            ids += [json.loads(await ws.recv())["data"]["t"] for _ in range(4)]
    steps = [b - a for a, b in pairwise(ids)]
    assert 3 in steps  # two ids skipped
    assert 0 in steps  # one repeated
    assert -1 in steps  # one pair swapped


async def test_rate_limit_on_control_messages_disconnects() -> None:
    """More than 5 incoming messages in a second closes the connection, as on the venue."""
    async with SimServer(Market(rate=0, seed=7)) as server:
        async with websockets.connect(f"{server.ws_url}/binance/stream") as ws:
            with pytest.raises(websockets.ConnectionClosed):
                for i in range(10):
                    await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
                    await asyncio.sleep(0.01)
                while True:
                    await ws.recv()
        assert server.sim.recordings["binance.violations"]


async def test_faults_are_scriptable_over_http_and_reject_refuses_upgrades() -> None:
    """POST /_sim/faults sets binance.reject; the next upgrade gets HTTP 503."""
    import aiohttp

    async with SimServer(Market(rate=0, seed=8)) as server, aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.base_url}/_sim/faults", json={"name": "binance.reject", "value": 1}
        ) as r:
            assert r.status == 200
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(f"{server.ws_url}/binance/stream"):
                pass
        assert info.value.response.status_code == 503
        async with websockets.connect(f"{server.ws_url}/binance/stream"):
            pass  # one-shot: the next attempt is accepted
