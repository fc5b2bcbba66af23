"""The simulated alternative.me index: all strings, newest first, time_until_update on top."""

from decimal import Decimal

import aiohttp

from coinstream.marketsim.feargreed import classification
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer


async def test_fng_shape_and_values_follow_the_market() -> None:
    market = Market(rate=0, seed=5, aggregator_lag=0)  # the index follows a push at once
    async with SimServer(market, run_market=False) as server:
        server.sim.market.set_price("BTC-USDT", Decimal("60300"))  # -10%: extreme fear
        async with aiohttp.ClientSession(base_url=server.base_url) as http:
            async with http.get("/feargreed/fng/", params={"limit": "3"}) as r:
                body = await r.json()
    assert body["name"] == "Fear and Greed Index" and body["metadata"] == {"error": None}
    rows = body["data"]
    assert len(rows) == 3
    assert all(isinstance(v, str) for row in rows for v in row.values())
    assert "time_until_update" in rows[0] and all("time_until_update" not in r for r in rows[1:])
    assert [int(r["timestamp"]) for r in rows] == sorted(
        (int(r["timestamp"]) for r in rows), reverse=True
    )
    assert int(rows[0]["timestamp"]) % 86400 == 0
    assert rows[0]["value"] == "1" and rows[0]["value_classification"] == "Extreme Fear"


def test_alternative_me_bands() -> None:
    assert [classification(v) for v in (0, 24, 25, 47, 54, 55, 75, 76, 100)] == [
        "Extreme Fear",
        "Extreme Fear",
        "Fear",
        "Neutral",
        "Neutral",
        "Greed",
        "Greed",
        "Extreme Greed",
        "Extreme Greed",
    ]
