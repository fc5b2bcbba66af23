"""The simulated CoinMarketCap Pro API: status envelope, keyed quotes, error codes, key checks."""

from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest

from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer


@pytest.fixture
async def cmc() -> AsyncIterator[tuple[SimServer, aiohttp.ClientSession]]:
    market = Market(rate=0, seed=5, aggregator_lag=0)  # prices follow a push at once
    async with SimServer(market, run_market=False) as server:
        async with aiohttp.ClientSession(base_url=server.base_url) as http:
            yield server, http


async def test_listings_have_the_status_envelope_and_market_prices(
    cmc: tuple[SimServer, aiohttp.ClientSession],
) -> None:
    server, http = cmc
    server.sim.market.set_price("ETH-USDT", Decimal("4000"))
    async with http.get("/cmc/v1/cryptocurrency/listings/latest", params={"limit": "2"}) as r:
        body = await r.json()
    assert body["status"]["error_code"] == 0 and body["status"]["error_message"] is None
    assert body["status"]["timestamp"].endswith("Z")
    assert [c["id"] for c in body["data"]] == [1, 1027]
    assert body["data"][1]["quote"]["USD"]["price"] == 4000
    assert body["data"][1]["max_supply"] is None


async def test_quotes_keyed_by_id_or_array_per_symbol_and_info(
    cmc: tuple[SimServer, aiohttp.ClientSession],
) -> None:
    _, http = cmc
    async with http.get("/cmc/v2/cryptocurrency/quotes/latest", params={"id": "1,24478"}) as r:
        by_id = (await r.json())["data"]
    assert set(by_id) == {"1", "24478"} and by_id["24478"]["symbol"] == "PEPE"
    async with http.get("/cmc/v2/cryptocurrency/quotes/latest", params={"symbol": "BTC"}) as r:
        by_symbol = (await r.json())["data"]
    assert isinstance(by_symbol["BTC"], list) and by_symbol["BTC"][0]["id"] == 1
    async with http.get("/cmc/v2/cryptocurrency/info", params={"id": "5426"}) as r:
        info = (await r.json())["data"]["5426"]
    assert info["slug"] == "solana" and info["urls"]["website"]
    async with http.get("/cmc/v3/fear-and-greed/latest") as r:
        fng = (await r.json())["data"]
    assert isinstance(fng["value"], int) and fng["value_classification"] == "Neutral"


async def test_key_checks_give_documented_401_bodies(
    cmc: tuple[SimServer, aiohttp.ClientSession],
) -> None:
    server, http = cmc
    server.sim.faults["coinmarketcap.api_key"] = "k"
    async with http.get("/cmc/v2/cryptocurrency/info", params={"id": "1"}) as r:
        assert r.status == 401 and (await r.json())["status"]["error_code"] == 1002
    async with http.get(
        "/cmc/v2/cryptocurrency/info", params={"id": "1"}, headers={"X-CMC_PRO_API_KEY": "x"}
    ) as r:
        assert r.status == 401 and (await r.json())["status"]["error_code"] == 1001
    async with http.get(
        "/cmc/v2/cryptocurrency/info", params={"id": "1"}, headers={"X-CMC_PRO_API_KEY": "k"}
    ) as r:
        assert r.status == 200


async def test_error_code_on_200_and_429_codes(
    cmc: tuple[SimServer, aiohttp.ClientSession],
) -> None:
    server, http = cmc
    server.sim.faults["coinmarketcap.faults"] = [
        {"kind": "error_code", "code": 1006},
        {"kind": "rate_limit", "code": 1009, "retry_after": 30},
    ]
    async with http.get("/cmc/v3/fear-and-greed/latest") as r:
        body = await r.json()
        assert r.status == 200 and body["status"]["error_code"] == 1006 and "data" not in body
    async with http.get("/cmc/v3/fear-and-greed/latest") as r:
        assert r.status == 429 and r.headers["Retry-After"] == "30"
        assert (await r.json())["status"]["error_code"] == 1009
