"""The simulated CoinGecko API: documented shapes, prices from the market, faults, key checks."""

from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest

from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer

BASE = "/coingecko/api/v3"


@pytest.fixture
async def cg() -> AsyncIterator[tuple[SimServer, aiohttp.ClientSession]]:
    market = Market(rate=0, seed=5, aggregator_lag=0)  # prices follow a push at once
    async with SimServer(market, run_market=False) as server:
        async with aiohttp.ClientSession(base_url=server.base_url) as http:
            yield server, http


async def test_simple_price_follows_the_market_with_documented_keys(
    cg: tuple[SimServer, aiohttp.ClientSession],
) -> None:
    server, http = cg
    server.sim.market.set_price("BTC-USDT", Decimal("70000"))
    params = {
        "ids": "bitcoin,pepe,unknown",
        "vs_currencies": "usd",
        "include_market_cap": "true",
        "include_24hr_vol": "true",
        "include_24hr_change": "true",
        "include_last_updated_at": "true",
    }
    async with http.get(f"{BASE}/simple/price", params=params) as r:
        assert r.status == 200
        body = await r.json()
    assert set(body) == {"bitcoin", "pepe"}
    btc = body["bitcoin"]
    assert set(btc) == {"usd", "usd_market_cap", "usd_24h_vol", "usd_24h_change", "last_updated_at"}
    assert btc["usd"] == 70000
    assert btc["usd_market_cap"] == pytest.approx(70000 * 19_675_987)
    assert btc["usd_24h_change"] == pytest.approx((70000 / 67000 - 1) * 100)
    assert isinstance(btc["last_updated_at"], int) and btc["last_updated_at"] < 10**11
    assert body["pepe"]["usd"] == pytest.approx(0.00001234)


async def test_markets_pages_and_ranks_by_market_cap(
    cg: tuple[SimServer, aiohttp.ClientSession],
) -> None:
    _, http = cg
    async with http.get(
        f"{BASE}/coins/markets", params={"vs_currency": "usd", "per_page": "3"}
    ) as r:
        page1 = await r.json()
    async with http.get(
        f"{BASE}/coins/markets", params={"vs_currency": "usd", "per_page": "3", "page": "2"}
    ) as r:
        page2 = await r.json()
    assert [c["id"] for c in page1] == ["bitcoin", "ethereum", "solana"]
    assert [c["id"] for c in page2] == ["pepe"]
    row = page1[0]
    assert row["symbol"] == "btc" and row["roi"] is None and row["last_updated"].endswith("Z")
    assert row["market_cap"] >= page1[1]["market_cap"]


async def test_coin_details_exchanges_global_and_ping(
    cg: tuple[SimServer, aiohttp.ClientSession],
) -> None:
    _, http = cg
    async with http.get(f"{BASE}/coins/bitcoin", params={"tickers": "false"}) as r:
        coin = await r.json()
    assert coin["id"] == "bitcoin" and "tickers" not in coin
    assert coin["sentiment_votes_up_percentage"] + coin[
        "sentiment_votes_down_percentage"
    ] == pytest.approx(100)
    assert coin["developer_data"]["code_additions_deletions_4_weeks"]["deletions"] < 0
    assert coin["community_data"]["facebook_likes"] is None
    async with http.get(f"{BASE}/coins/nope") as r:
        assert r.status == 404
    async with http.get(f"{BASE}/exchanges") as r:
        exchanges = await r.json()
    assert {"name", "country", "year_established", "trust_score", "trade_volume_24h_btc"} <= set(
        exchanges[0]
    )
    async with http.get(f"{BASE}/global") as r:
        glob = await r.json()
    assert "data" in glob and isinstance(glob["data"]["updated_at"], int)
    assert sum(glob["data"]["market_cap_percentage"].values()) < 100
    async with http.get(f"{BASE}/ping") as r:
        assert await r.json() == {"gecko_says": "(V3) To the Moon!"}


async def test_rate_limit_fault_json_and_cloudflare_html(
    cg: tuple[SimServer, aiohttp.ClientSession],
) -> None:
    server, http = cg
    server.sim.faults["coingecko.faults"] = [
        {"kind": "rate_limit", "retry_after": 2},
        {"kind": "rate_limit", "retry_after": 5, "format": "html"},
    ]
    async with http.get(f"{BASE}/ping") as r:
        assert r.status == 429 and r.headers["Retry-After"] == "2"
        assert (await r.json())["status"]["error_code"] == 429
    async with http.get(f"{BASE}/ping") as r:
        assert r.status == 429 and r.headers["Retry-After"] == "5"
        assert r.content_type == "text/html" and "rate limited" in await r.text()
    async with http.get(f"{BASE}/ping") as r:
        assert r.status == 200


async def test_key_checks_and_recorded_headers(cg: tuple[SimServer, aiohttp.ClientSession]) -> None:
    server, http = cg
    server.sim.faults["coingecko.api_key"] = "good"
    async with http.get(f"{BASE}/ping") as r:
        assert r.status == 401 and (await r.json())["status"]["error_code"] == 10002
    async with http.get(f"{BASE}/ping", headers={"x-cg-demo-api-key": "bad"}) as r:
        assert r.status == 401
    async with http.get(f"{BASE}/ping", headers={"x-cg-pro-api-key": "good"}) as r:
        assert r.status == 200
    recorded = server.sim.recordings["coingecko.requests"]
    assert recorded[-1]["headers"]["x-cg-pro-api-key"] == "good"


async def test_malformed_and_slow_faults(cg: tuple[SimServer, aiohttp.ClientSession]) -> None:
    server, http = cg
    server.sim.faults["coingecko.faults"] = [
        {"kind": "malformed"},
        {"kind": "slow", "delay_s": 0.3},
    ]
    async with http.get(f"{BASE}/global") as r:
        assert r.status == 200
        with pytest.raises(ValueError):
            await r.json()
    loop_started = __import__("time").monotonic()
    async with http.get(f"{BASE}/global") as r:
        assert r.status == 200 and "data" in await r.json()
    assert __import__("time").monotonic() - loop_started >= 0.3
