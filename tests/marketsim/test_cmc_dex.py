"""The simulated CMC DEX v4 API: spec-shaped pairs, string ids, scroll_id paging, quote forms."""

import aiohttp
import pytest

from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer


async def test_spot_pairs_page_with_scroll_id_and_follow_the_market() -> None:
    async with SimServer(Market(rate=0, seed=5), run_market=False) as server:
        async with aiohttp.ClientSession(base_url=server.base_url) as http:
            q = {"network_slug": "ethereum", "limit": "2"}
            async with http.get("/cmc/v4/dex/spot-pairs/latest", params=q) as r:
                page1 = (await r.json())["data"]
            async with http.get(
                "/cmc/v4/dex/spot-pairs/latest", params={**q, "scroll_id": page1[-1]["scroll_id"]}
            ) as r:
                page2 = (await r.json())["data"]
            async with http.get("/cmc/v4/dex/spot-pairs/latest") as r:
                assert r.status == 400
    assert len(page1) == 2 and len(page2) == 1
    names = [p["name"] for p in page1 + page2]
    assert names == ["PEPE/WETH", "WETH/USDT", "WBTC/WETH"]
    pepe = page1[0]
    assert isinstance(pepe["base_asset_id"], str) and isinstance(pepe["network_id"], str)
    assert isinstance(pepe["quote"], list) and pepe["quote"][0]["convert_id"] == "2781"
    assert pepe["quote"][0]["price"] == pytest.approx(0.00001234)
    assert pepe["quote"][0]["price_by_quote_asset"] == pytest.approx(0.00001234 / 3500)


async def test_pair_quotes_by_contract_and_quote_as_map_option() -> None:
    async with SimServer(Market(rate=0, seed=5), run_market=False) as server:
        server.sim.faults["cmc-dex.quote_as_map"] = True
        async with aiohttp.ClientSession(base_url=server.base_url) as http:
            params = {
                "network_slug": "solana",
                "contract_address": "58oQChx4yWmvKdwLLZzBi4ChoCc2fqCUWBkwMihLYQo2",
            }
            async with http.get("/cmc/v4/dex/pairs/quotes/latest", params=params) as r:
                body = await r.json()
    [pair] = body["data"]
    assert pair["base_asset_symbol"] == "SOL" and body["status"]["error_code"] == 0
    assert pair["quote"]["2781"]["price"] == 150
