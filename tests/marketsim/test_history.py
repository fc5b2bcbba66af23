"""The venues' REST trade-history endpoints serve the very trades their WebSockets streamed,
in each venue's documented shape, with 429/5xx and truncated-history faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp

from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer


def market_with_trades(n: int = 30) -> Market:
    market = Market(rate=0, seed=3)
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    for i in range(n):
        for symbol in ("BTC-USDT", "BTC-USD"):
            market.step(symbol, start + timedelta(seconds=i))
    return market


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str], object]:
    async with session.get(url) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


async def test_binance_historical_trades_by_from_id_with_the_stream_ids() -> None:
    market = market_with_trades()
    ids = [t.trade_id for t in market.history("BTC-USDT")]
    async with SimServer(market, run_market=False) as server, aiohttp.ClientSession() as http:
        base = f"{server.base_url}/binance/api/v3/historicalTrades?symbol=BTCUSDT"
        status, _, body = await get(http, f"{base}&fromId={ids[5]}&limit=10")
        assert status == 200 and isinstance(body, list)
        assert [t["id"] for t in body] == ids[5:15]
        first = body[0]
        assert set(first) == {
            "id",
            "price",
            "qty",
            "quoteQty",
            "time",
            "isBuyerMaker",
            "isBestMatch",
        }
        status, _, newest = await get(http, f"{base}&limit=3")
        assert [t["id"] for t in newest] == ids[-3:]  # type: ignore[union-attr]
        status, _, error = await get(
            http, f"{server.base_url}/binance/api/v3/historicalTrades?symbol=NOPE"
        )
        assert status == 400 and error == {"code": -1121, "msg": "Invalid symbol."}


async def test_rate_limit_and_truncated_history_faults() -> None:
    market = market_with_trades()
    ids = [t.trade_id for t in market.history("BTC-USDT")]
    async with SimServer(market, run_market=False) as server, aiohttp.ClientSession() as http:
        sim = server.sim
        sim.faults["binance.faults"] = [{"kind": "rate_limit", "retry_after": 2}]
        base = f"{server.base_url}/binance/api/v3/historicalTrades?symbol=BTCUSDT&fromId={ids[0]}"
        status, headers, body = await get(http, base)
        assert status == 429 and headers["Retry-After"] == "2" and body["code"] == -1003  # type: ignore[index]
        sim.faults["binance.history_keep"] = 5
        status, _, body = await get(http, base)
        assert status == 200 and [t["id"] for t in body] == ids[-5:]  # type: ignore[union-attr]
        assert len(sim.recordings["binance.requests"]) == 2


async def test_coinbase_market_trades_in_a_time_window_newest_first() -> None:
    market = market_with_trades()
    trades = list(market.history("BTC-USD"))
    async with SimServer(market, run_market=False) as server, aiohttp.ClientSession() as http:
        start, end = trades[10].time.timestamp(), trades[20].time.timestamp()
        url = (
            f"{server.base_url}/coinbase/api/v3/brokerage/market/products/BTC-USD/ticker"
            f"?limit=1000&start={start}&end={end}"
        )
        status, _, body = await get(http, url)
    assert status == 200 and isinstance(body, dict)
    got = [int(t["trade_id"]) for t in body["trades"]]
    assert got == [t.trade_id for t in reversed(trades[10:20])]
    assert {"best_bid", "best_ask"} <= set(body)
    assert body["trades"][0]["product_id"] == "BTC-USD" and body["trades"][0]["side"] in (
        "BUY",
        "SELL",
    )


async def test_kraken_public_trades_since_and_last() -> None:
    market = market_with_trades()
    trades = list(market.history("BTC-USD"))
    async with SimServer(market, run_market=False) as server, aiohttp.ClientSession() as http:
        since = trades[4].time.timestamp()
        url = f"{server.base_url}/kraken/0/public/Trades?pair=XBTUSD&since={since}&count=5"
        status, _, body = await get(http, url)
        assert status == 200 and body["error"] == []  # type: ignore[index]
        rows = body["result"]["XXBTZUSD"]  # type: ignore[index]
        assert [r[6] for r in rows] == [t.trade_id for t in trades[5:10]]
        last = body["result"]["last"]  # type: ignore[index]
        _, _, more = await get(
            http, f"{server.base_url}/kraken/0/public/Trades?pair=XBTUSD&since={last}&count=2"
        )
        assert [r[6] for r in more["result"]["XXBTZUSD"]] == [t.trade_id for t in trades[10:12]]  # type: ignore[index]
        _, _, unknown = await get(http, f"{server.base_url}/kraken/0/public/Trades?pair=NOPE")
        assert unknown == {"error": ["EQuery:Unknown asset pair"]}
