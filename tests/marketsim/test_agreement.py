"""A market that agrees with itself, seen through the real protocols: Binance, Coinbase and
Kraken stream BTC within a fraction of a percent of each other (never the same prices), a push
moves every venue at once and every aggregator after its lag."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import aiohttp

from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer

from .feeds import FEEDS, streaming, until

WBTC_WETH = "0xcbcdf9626bc03e24f779434178a73a0b4bad62ed"


async def test_venues_agree_within_a_fraction_of_a_percent_but_not_to_the_cent() -> None:
    async with SimServer(Market(rate=20, seed=31)) as server:
        async with streaming(server.ws_url) as tape:
            await until(lambda: asyncio.sleep(0, len(tape.spreads) >= 150), "150 spreads")
    assert set(tape.prices) == set(FEEDS)
    assert tape.max_spread() < 0.5
    common = set(tape.prices["coinbase"]) & set(tape.prices["kraken"])
    assert len(common) >= 20  # the same BTC-USD trades ...
    same = [i for i in common if tape.prices["coinbase"][i] == tape.prices["kraken"][i]]
    assert len(same) <= len(common) // 5  # ... at different prices on each venue


async def aggregator_prices(http: aiohttp.ClientSession) -> dict[str, float]:
    """BTC's USD price at CoinGecko, CoinMarketCap and CMC DEX (WBTC), as they answer now."""
    async with http.get(
        "/coingecko/api/v3/simple/price", params={"ids": "bitcoin", "vs_currencies": "usd"}
    ) as r:
        coingecko = (await r.json())["bitcoin"]["usd"]
    async with http.get("/cmc/v2/cryptocurrency/quotes/latest", params={"id": "1"}) as r:
        cmc = (await r.json())["data"]["1"]["quote"]["USD"]["price"]
    params = {"network_slug": "ethereum", "contract_address": WBTC_WETH}
    async with http.get("/cmc/v4/dex/pairs/quotes/latest", params=params) as r:
        dex = (await r.json())["data"][0]["quote"][0]["price"]
    return {"coingecko": coingecko, "coinmarketcap": cmc, "cmc-dex": dex}


async def test_a_push_moves_every_venue_at_once_and_every_aggregator_after_its_lag() -> None:
    """POST /_sim/price moves BTC's fair value 3%: within a second every venue streams the new
    level (spread back under 1%); the aggregators still quote the old one, then follow."""
    market = Market(rate=20, seed=32, aggregator_lag=0.25)  # CoinGecko: 1 s + 1.5 s window
    async with SimServer(market) as server, streaming(server.ws_url) as tape:
        async with aiohttp.ClientSession(base_url=server.base_url) as http:
            await until(lambda: asyncio.sleep(0, len(tape.spreads) >= 20), "trades from all")
            before = market.fair_value("BTC")
            assert tape.max_spread() < 0.5
            target = (market.price("BTC-USDT") * Decimal("1.03")).quantize(Decimal("0.01"))
            async with http.post("/_sim/price", json={"symbol": "BTC-USDT", "price": str(target)}):
                pushed = time.monotonic()
            lagging = await aggregator_prices(http)
            assert all(abs(p / float(before) - 1) < 0.005 for p in lagging.values()), lagging

            def moved() -> bool:
                return all(p > before * Decimal("1.02") for p in tape.latest.values())

            await until(lambda: asyncio.sleep(0, moved()), "every venue at the new level", 3)
            settled = time.monotonic()
            await asyncio.sleep(1.0)
            assert settled - pushed < 1.0
            assert tape.max_spread(since=settled) < 0.5

            async def followed() -> dict[str, float] | None:
                now = await aggregator_prices(http)
                fair = float(market.fair_value("BTC"))
                return now if all(abs(p / fair - 1) < 0.003 for p in now.values()) else None

            caught_up = await until(followed, "every aggregator at the new level", 10)
    venues = [float(p) for p in tape.latest.values()]
    every = venues + list(caught_up.values())
    assert (max(every) - min(every)) / min(every) < 0.01, (tape.latest, caught_up)
