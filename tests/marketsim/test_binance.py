"""The simulator speaks Binance's combined-stream protocol to a real websockets client."""

import json
from decimal import Decimal

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
