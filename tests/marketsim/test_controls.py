"""The simulator controls under /_sim/: asset metadata every metadata source serves at once,
and a venue diverged from the market (for spread alerts) and brought back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest

from coinstream.marketsim.assets import Metadata, MetadataError, changed
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer

from .feeds import streaming, until

CG = "/coingecko/api/v3"
NEW = {
    "name": "Bitcoin Core",
    "description": "Peer-to-peer electronic cash, renamed by the simulator.",
    "links": {
        "website": "https://bitcoincore.org/",
        "reddit": "https://www.reddit.com/r/Bitcoin/",
        "source_code": "https://github.com/bitcoin/bitcoin",
    },
}


@pytest.fixture
async def rest() -> AsyncIterator[tuple[SimServer, aiohttp.ClientSession]]:
    async with SimServer(Market(rate=0, seed=41), run_market=False) as server:
        async with aiohttp.ClientSession(base_url=server.base_url) as http:
            yield server, http


async def test_changed_metadata_is_what_coingecko_and_cmc_serve(
    rest: tuple[SimServer, aiohttp.ClientSession],
) -> None:
    _, http = rest
    async with http.post("/_sim/assets/bitcoin", json=NEW) as r:
        assert r.status == 200
        assert await r.json() == {"asset": "bitcoin", "symbol": "BTC", **NEW}
    async with http.get(f"{CG}/coins/bitcoin") as r:
        coin = await r.json()
    assert coin["name"] == "Bitcoin Core"
    assert coin["description"] == {"en": NEW["description"]}
    assert coin["links"]["homepage"] == ["https://bitcoincore.org/"]
    assert coin["links"]["subreddit_url"] == "https://www.reddit.com/r/Bitcoin/"
    assert coin["links"]["repos_url"]["github"] == ["https://github.com/bitcoin/bitcoin"]
    async with http.get(f"{CG}/coins/markets", params={"vs_currency": "usd"}) as r:
        names = {c["id"]: c["name"] for c in await r.json()}
    assert names["bitcoin"] == "Bitcoin Core" and names["ethereum"] == "Ethereum"
    async with http.get("/cmc/v2/cryptocurrency/info", params={"id": "1"}) as r:
        info = (await r.json())["data"]["1"]
    assert (info["name"], info["description"]) == ("Bitcoin Core", NEW["description"])
    assert info["urls"]["website"] == ["https://bitcoincore.org/"]
    assert info["urls"]["reddit"] == ["https://www.reddit.com/r/Bitcoin/"]
    assert info["urls"]["source_code"] == ["https://github.com/bitcoin/bitcoin"]
    async with http.get("/cmc/v2/cryptocurrency/quotes/latest", params={"symbol": "BTC"}) as r:
        assert (await r.json())["data"]["BTC"][0]["name"] == "Bitcoin Core"


async def test_a_partial_change_keeps_the_other_fields_and_any_asset_key_works(
    rest: tuple[SimServer, aiohttp.ClientSession],
) -> None:
    _, http = rest
    async with http.get("/_sim/assets/1027") as r:  # CMC id
        opening = await r.json()
    async with http.post("/_sim/assets/eth", json={"links": {"website": "https://eth.example/"}}):
        pass
    async with http.get("/_sim/assets/ethereum") as r:
        now = await r.json()
    assert now["links"]["website"] == "https://eth.example/"
    assert now["links"]["reddit"] == opening["links"]["reddit"]
    assert (now["name"], now["description"]) == (opening["name"], opening["description"])
    async with http.get("/cmc/v2/cryptocurrency/info", params={"slug": "ethereum"}) as r:
        info = (await r.json())["data"]["1027"]
    assert info["urls"]["website"] == ["https://eth.example/"] and info["name"] == "Ethereum"


async def test_bad_metadata_changes_are_refused_with_what_to_send(
    rest: tuple[SimServer, aiohttp.ClientSession],
) -> None:
    _, http = rest
    for body, words in [
        ({"nmae": "x"}, "nmae"),
        ({"name": ""}, "non-empty"),
        ({"links": {"twitter": "https://x.example"}}, "website"),
        ([1, 2], "JSON object"),
    ]:
        async with http.post("/_sim/assets/bitcoin", json=body) as r:
            assert r.status == 400, body
            assert words in (await r.json())["error"]
    async with http.post("/_sim/assets/dogecoin", json={"name": "x"}) as r:
        assert r.status == 404 and "bitcoin" in (await r.json())["error"]
    async with http.get(f"{CG}/coins/bitcoin") as r:
        assert (await r.json())["name"] == "Bitcoin"  # nothing changed


def test_metadata_changes_are_pure_and_validated() -> None:
    from coinstream.marketsim.assets import BY_SYMBOL

    opening: Metadata = BY_SYMBOL["SOL"].opening
    renamed = changed(opening, {"name": "Solana (renamed)"})
    assert renamed.name == "Solana (renamed)" and renamed.links == opening.links
    assert changed(opening, {"description": ""}).description == ""
    with pytest.raises(MetadataError):
        changed(opening, {})
    with pytest.raises(MetadataError):
        changed(opening, {"links": {"website": 7}})


async def test_each_simulator_keeps_its_own_metadata() -> None:
    async with SimServer(Market(rate=0, seed=42), run_market=False) as a:
        async with SimServer(Market(rate=0, seed=43), run_market=False) as b:
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{a.base_url}/_sim/assets/pepe", json={"name": "Pepe 2"}):
                    pass
                async with http.get(f"{b.base_url}/_sim/assets/pepe") as r:
                    assert (await r.json())["name"] == "Pepe"


def ratio(coinbase: dict[int, Decimal], kraken: dict[int, Decimal]) -> list[float]:
    """Kraken's price over Coinbase's, for every BTC-USD trade both streamed."""
    return [float(kraken[i] / coinbase[i]) for i in sorted(set(coinbase) & set(kraken))]


async def test_diverge_moves_one_venue_away_and_back() -> None:
    """Kraken's BTC-USD diverged by +2% prints the same trades 2% above Coinbase; its REST
    history shows them as streamed; cleared, it is back within a few basis points."""
    async with SimServer(Market(rate=20, seed=44)) as server, streaming(server.ws_url) as tape:
        async with aiohttp.ClientSession(base_url=server.base_url) as http:

            async def common_after(mark: int, n: int) -> list[float]:
                async def enough() -> list[float] | None:
                    r = ratio(tape.after("coinbase", mark), tape.after("kraken", mark))
                    return r if len(r) >= n else None

                return await until(enough, f"{n} BTC-USD trades from both venues")  # type: ignore[no-any-return]

            async def newest() -> int:
                await asyncio.sleep(0.5)  # what was in flight has arrived
                return max(tape.prices["kraken"])

            normal = await common_after(0, 10)
            assert all(abs(r - 1) < 0.003 for r in normal)
            body = {"venue": "kraken", "percent": 2, "symbol": "BTC-USD"}
            async with http.post("/_sim/diverge", json=body) as r:
                assert r.status == 200
                assert (await r.json())["divergences"] == [body]
            mark = await newest()
            diverged = await common_after(mark, 10)
            assert all(1.015 < r < 1.025 for r in diverged), diverged
            async with http.get("/_sim/state") as r:
                assert (await r.json())["divergences"] == [body]
            async with http.get("/kraken/0/public/Trades", params={"pair": "XBTUSD"}) as r:
                rows = (await r.json())["result"]["XXBTZUSD"]
            streamed = tape.prices["kraken"]
            history = {row[6]: Decimal(str(row[0])) for row in rows if row[6] in streamed}
            assert len(history) >= 10
            assert history == {i: streamed[i] for i in history}
            async with http.post("/_sim/diverge", json={"venue": "kraken", "percent": None}) as r:
                assert (await r.json())["divergences"] == []
            mark = await newest()
            back = await common_after(mark, 10)
            assert all(abs(r - 1) < 0.003 for r in back), back


async def test_bad_divergences_are_refused(
    rest: tuple[SimServer, aiohttp.ClientSession],
) -> None:
    _, http = rest
    for body, words in [
        ({"venue": "mtgox", "percent": 2}, "binance, coinbase, kraken"),
        ({"venue": "kraken", "percent": "2%"}, "number"),
        ({"venue": "kraken", "percent": -100}, "above -100"),
        ({"venue": "kraken", "percent": 5000}, "at most 1000"),
        ({"venue": "kraken", "percent": 1, "symbol": "XBT-EUR"}, "BTC-USD"),
        ({"percent": 1}, "venue"),
    ]:
        async with http.post("/_sim/diverge", json=body) as r:
            assert r.status == 400, body
            assert words in (await r.json())["error"], body
    async with http.get("/_sim/state") as r:
        assert (await r.json())["divergences"] == []


async def test_bad_prices_are_refused_and_change_nothing(
    rest: tuple[SimServer, aiohttp.ClientSession],
) -> None:
    server, http = rest
    before = {s: server.sim.market.price(s) for s in server.sim.market.instruments}
    for body, status in [
        ({"symbol": "BTC-USDT", "price": "abc"}, 400),
        ({"symbol": "BTC-USDT", "price": "-5"}, 400),
        ({"symbol": "BTC-USDT", "price": "1e40"}, 400),
        ({"symbol": "XBT-EUR", "price": "1"}, 400),
        ({"price": "1"}, 400),
    ]:
        async with http.post("/_sim/price", json=body) as r:
            assert r.status == status, body
    assert {s: server.sim.market.price(s) for s in before} == before
    assert server.sim.market.fair_value("BTC") == Decimal("67000")
