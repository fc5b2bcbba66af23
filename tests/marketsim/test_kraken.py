"""The simulator speaks Kraken WebSocket v2 to a real websockets client."""

import asyncio
import json
from decimal import Decimal
from itertools import pairwise

import pytest
import websockets

from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer


def subscribe(channel: str, symbols: list[str], req_id: int = 1) -> str:
    return json.dumps(
        {
            "method": "subscribe",
            "params": {"channel": channel, "symbol": symbols, "snapshot": True},
            "req_id": req_id,
        }
    )


async def test_status_on_connect_acks_per_symbol_and_snapshots() -> None:
    """status first; one ack per symbol; ticker and trade snapshots with JSON numbers."""
    async with SimServer(Market(rate=20, seed=61)) as server:
        await asyncio.sleep(0.3)  # let the trade history fill
        async with websockets.connect(f"{server.ws_url}/kraken/v2") as ws:
            status = json.loads(await ws.recv())
            assert status["channel"] == "status" and status["data"][0]["system"] == "online"
            await ws.send(subscribe("ticker", ["BTC/USD", "ETH/USD"], 7))
            await ws.send(subscribe("trade", ["BTC/USD"], 8))
            msgs = []
            while not any(m.get("channel") == "trade" and m["type"] == "snapshot" for m in msgs):
                msgs.append(json.loads(await ws.recv(), parse_float=Decimal))
    acks = [m for m in msgs if m.get("method") == "subscribe"]
    assert [(a["result"]["channel"], a["result"]["symbol"], a["req_id"]) for a in acks] == [
        ("ticker", "BTC/USD", 7),
        ("ticker", "ETH/USD", 7),
        ("trade", "BTC/USD", 8),
    ]
    assert all(a["success"] is True and a["time_in"].endswith("Z") for a in acks)
    ticker = next(m for m in msgs if m.get("channel") == "ticker")
    assert ticker["type"] == "snapshot" and isinstance(ticker["data"][0]["last"], Decimal)
    trades = next(m for m in msgs if m.get("channel") == "trade")["data"]
    assert 0 < len(trades) <= 50
    ids = [t["trade_id"] for t in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert isinstance(trades[0]["price"], Decimal) and trades[0]["symbol"] == "BTC/USD"


async def test_ping_pong_heartbeat_and_unknown_pair() -> None:
    async with SimServer(Market(rate=0, seed=62)) as server:
        async with websockets.connect(f"{server.ws_url}/kraken/v2") as ws:
            await ws.recv()  # status
            await ws.send(json.dumps({"method": "ping", "req_id": 101}))
            pong = json.loads(await ws.recv())
            assert pong["method"] == "pong" and pong["req_id"] == 101 and "time_out" in pong
            await ws.send(subscribe("ticker", ["XBT/EUR"], 2))
            err = json.loads(await ws.recv())
            assert err == {**err, "error": "Currency pair not supported XBT/EUR", "success": False}
            await ws.send(subscribe("ticker", ["BTC/USD"], 3))
            seen = [json.loads(await asyncio.wait_for(ws.recv(), 3)) for _ in range(3)]
            assert {"channel": "heartbeat"} in seen  # quiet market: heartbeats keep coming


async def test_no_pong_fault_withholds_the_application_pong() -> None:
    async with SimServer(Market(rate=0, seed=63)) as server:
        async with websockets.connect(f"{server.ws_url}/kraken/v2") as ws:
            await ws.recv()
            server.sim.faults["kraken.no_pong"] = True
            await ws.send(json.dumps({"method": "ping", "req_id": 5}))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.5)


async def test_trade_gap_duplicate_and_disconnect_faults() -> None:
    async with SimServer(Market(rate=50, seed=64)) as server:
        async with websockets.connect(f"{server.ws_url}/kraken/v2") as ws:
            await ws.recv()
            await ws.send(
                json.dumps(
                    {
                        "method": "subscribe",
                        "params": {"channel": "trade", "symbol": ["ETH/USD"], "snapshot": False},
                    }
                )
            )
            await ws.recv()  # ack
            ids: list[int] = []

            async def next_trade() -> None:
                while True:
                    m = json.loads(await ws.recv())
                    if m.get("channel") == "trade":
                        ids.extend(t["trade_id"] for t in m["data"])
                        return

            for _ in range(2):
                await next_trade()
            server.sim.faults["kraken.gap"] = 1
            server.sim.faults["kraken.duplicate"] = 1
            for _ in range(3):
                await next_trade()
            steps = [b - a for a, b in pairwise(ids)]
            assert 2 in steps and 0 in steps
            server.sim.faults["kraken.disconnect"] = 1
            with pytest.raises(websockets.ConnectionClosedError):
                while True:
                    await ws.recv()
