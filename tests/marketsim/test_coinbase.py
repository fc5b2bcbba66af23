"""The simulator speaks Coinbase Advanced Trade market data to a real websockets client."""

import asyncio
import json
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest
import websockets

from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer


def subscribe(channel: str, products: list[str]) -> str:
    return json.dumps({"type": "subscribe", "product_ids": products, "channel": channel})


async def collect(ws: Any, channels: set[str], limit: int = 200) -> dict[str, list[dict]]:
    got: dict[str, list[dict]] = {}
    for _ in range(limit):
        msg = json.loads(await ws.recv())
        got.setdefault(msg.get("channel", msg.get("type")), []).append(msg)
        if channels <= set(got):
            break
    return got


async def test_ticker_market_trades_and_heartbeats_messages() -> None:
    """Each channel answers with the documented envelope and field types."""
    async with SimServer(Market(rate=20, seed=51)) as server:
        async with websockets.connect(f"{server.ws_url}/coinbase") as ws:
            for channel in ("ticker", "market_trades", "heartbeats"):
                await ws.send(subscribe(channel, ["BTC-USD"]))
            got = await collect(ws, {"ticker", "market_trades", "heartbeats", "subscriptions"})
    every = sorted((m for msgs in got.values() for m in msgs), key=lambda m: m["sequence_num"])
    assert all(
        set(m) == {"channel", "client_id", "timestamp", "sequence_num", "events"} for m in every
    )
    seqs = [m["sequence_num"] for m in every]
    assert seqs == list(range(len(seqs)))  # one counter per connection, no gaps or repeats
    assert every[0]["timestamp"].endswith("Z") and len(every[0]["timestamp"].split(".")[1]) == 10
    ticker = got["ticker"][0]["events"][0]
    assert ticker["type"] == "snapshot"
    item = ticker["tickers"][0]
    assert item["product_id"] == "BTC-USD" and isinstance(item["price"], str)
    assert Decimal(item["price"]) > 0
    trades = [t for m in got["market_trades"] for e in m["events"] for t in e["trades"]]
    if trades:
        assert trades[0]["side"] in ("BUY", "SELL") and isinstance(trades[0]["trade_id"], str)
    beat = got["heartbeats"][0]["events"][0]
    assert isinstance(beat["heartbeat_counter"], str) and " +0000 UTC" in beat["current_time"]
    subs = got["subscriptions"][-1]["events"][0]["subscriptions"]
    assert subs["ticker"] == ["BTC-USD"]


async def test_one_channel_per_subscribe_and_unknown_products_are_errors() -> None:
    async with SimServer(Market(rate=0, seed=52)) as server:
        async with websockets.connect(f"{server.ws_url}/coinbase") as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "subscribe",
                        "product_ids": ["BTC-USD"],
                        "channels": ["ticker", "heartbeats"],
                    }
                )
            )
            err = json.loads(await ws.recv())
            assert err["type"] == "error" and "one channel" in err["reason"]
            await ws.send(subscribe("ticker", ["NOPE-USD"]))
            err = json.loads(await ws.recv())
            assert err["type"] == "error" and "NOPE-USD" in err["reason"]


async def test_no_subscribe_within_five_seconds_disconnects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from coinstream.marketsim import coinbase

    monkeypatch.setattr(coinbase, "SUBSCRIBE_DEADLINE_S", 0.2)
    async with SimServer(Market(rate=0, seed=53)) as server:
        async with websockets.connect(f"{server.ws_url}/coinbase") as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 3)
        assert server.sim.recordings["coinbase.violations"] == [{"rule": "subscribe within 5 s"}]


async def test_more_than_eight_messages_a_second_is_refused() -> None:
    async with SimServer(Market(rate=0, seed=54)) as server:
        async with websockets.connect(f"{server.ws_url}/coinbase") as ws:
            with pytest.raises(websockets.ConnectionClosed):
                for _ in range(12):
                    await ws.send(subscribe("heartbeats", ["BTC-USD"]))
                while True:
                    await ws.recv()
        assert server.sim.recordings["coinbase.violations"] == [{"rule": "8 messages per second"}]


async def test_gap_fault_skips_sequence_numbers_and_silent_stops_everything() -> None:
    async with SimServer(Market(rate=50, seed=55)) as server:
        async with websockets.connect(f"{server.ws_url}/coinbase") as ws:
            await ws.send(subscribe("market_trades", ["BTC-USD"]))
            seqs = [json.loads(await ws.recv())["sequence_num"] for _ in range(3)]
            server.sim.faults["coinbase.gap"] = 2
            seqs += [json.loads(await ws.recv())["sequence_num"] for _ in range(3)]
            assert 3 in [b - a for a, b in pairwise(seqs)]
            server.sim.faults["coinbase.silent"] = True
            await asyncio.sleep(0.1)
            with pytest.raises(TimeoutError):
                while True:  # drain what was in flight, then nothing arrives
                    await asyncio.wait_for(ws.recv(), 0.5)
            pong = await ws.ping()
            await asyncio.wait_for(pong, 2)  # still connected and answering pings
