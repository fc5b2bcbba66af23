"""Each source plugin builds the documented requests, pages correctly and sends its key header."""

from pydantic import SecretStr

from coinstream.ingest_rest.registry import load_sources
from coinstream.ingest_rest.source import Endpoint, Request, RestSource
from coinstream.ingest_rest.sources.cmc_dex import SOURCE as DEX
from coinstream.ingest_rest.sources.cmc_dex import CmcDexSettings
from coinstream.ingest_rest.sources.coingecko import (
    PRO_BASE_URL,
    PUBLIC_BASE_URL,
    CoinGeckoSettings,
)
from coinstream.ingest_rest.sources.coingecko import SOURCE as CG
from coinstream.ingest_rest.sources.coinmarketcap import SOURCE as CMC
from coinstream.ingest_rest.sources.coinmarketcap import CoinMarketCapSettings
from coinstream.ingest_rest.sources.feargreed import SOURCE as FNG
from coinstream.ingest_rest.sources.feargreed import FearGreedSettings

CHANNELS = {
    "coingecko": {
        "/ping",
        "/simple/price",
        "/coins/markets",
        "/coins/{id}",
        "/exchanges",
        "/global",
    },
    "coinmarketcap": {
        "/v1/cryptocurrency/listings/latest",
        "/v2/cryptocurrency/quotes/latest",
        "/v2/cryptocurrency/info",
        "/v3/fear-and-greed/latest",
    },
    "cmc-dex": {"/v4/dex/spot-pairs/latest", "/v4/dex/pairs/quotes/latest"},
    "feargreed": {"/fng/"},
}


def endpoint(source: RestSource, key: str) -> Endpoint:
    return next(e for e in source.endpoints() if e.key == key)


def test_entry_points_register_the_four_sources_with_the_contract_channels() -> None:
    sources = {s.name: s for s in load_sources()}
    assert set(CHANNELS) <= set(sources)
    for name, channels in CHANNELS.items():
        assert {e.channel for e in sources[name].endpoints()} == channels
        assert len({e.key for e in sources[name].endpoints()}) == len(channels)


def test_coingecko_simple_price_asks_for_every_documented_field() -> None:
    s = CoinGeckoSettings(ids=["bitcoin", "pepe"], vs_currencies=["usd", "btc"])
    [req] = endpoint(CG, "simple_price").requests(s)
    assert req.path == "/simple/price"
    assert dict(req.params) == {
        "ids": "bitcoin,pepe",
        "vs_currencies": "usd,btc",
        "include_market_cap": "true",
        "include_24hr_vol": "true",
        "include_24hr_change": "true",
        "include_last_updated_at": "true",
    }


def test_coingecko_markets_pages_until_top_n_or_a_short_page() -> None:
    s = CoinGeckoSettings(markets_top_n=250, markets_per_page=100)
    ep = endpoint(CG, "coins_markets")
    [first] = ep.requests(s)
    assert first.params["per_page"] == "100" and first.params["page"] == "1"
    second = ep.next_page(first, [{}] * 100, s)
    assert second is not None and second.params["page"] == "2" and second.page == 2
    third = ep.next_page(second, [{}] * 100, s)
    assert third is not None and third.params["page"] == "3"
    assert ep.next_page(third, [{}] * 100, s) is None  # 3 pages cover the top 250
    assert ep.next_page(first, [{}] * 40, s) is None  # a short page is the last


def test_coingecko_coin_details_for_each_tracked_asset_without_tickers() -> None:
    reqs = endpoint(CG, "coins_id").requests(CoinGeckoSettings(ids=["bitcoin", "solana"]))
    assert [r.path for r in reqs] == ["/coins/bitcoin", "/coins/solana"]
    assert reqs[0].params["tickers"] == "false" and reqs[0].params["community_data"] == "true"


def test_coingecko_plan_selects_base_url_and_key_header() -> None:
    key = SecretStr("cg-key")
    assert CG.base_url(CoinGeckoSettings()) == PUBLIC_BASE_URL
    assert CG.auth_headers(CoinGeckoSettings()) == {}
    assert CG.auth_headers(CoinGeckoSettings(plan="demo", api_key=key)) == {
        "x-cg-demo-api-key": "cg-key"
    }
    pro = CoinGeckoSettings(plan="pro", api_key=key)
    assert CG.base_url(pro) == PRO_BASE_URL
    assert CG.auth_headers(pro) == {"x-cg-pro-api-key": "cg-key"}
    assert CG.base_url(CoinGeckoSettings(plan="pro", base_url="http://sim/cg/")) == "http://sim/cg"


def test_cmc_requests_carry_ids_convert_and_credit_cost() -> None:
    s = CoinMarketCapSettings(ids=[1, 1027], convert=["USD", "EUR"], listings_limit=500)
    [listings] = endpoint(CMC, "listings_latest").requests(s)
    assert listings.params == {"start": "1", "limit": "500", "convert": "USD,EUR"}
    assert listings.cost == 3 * 2  # 1 credit per 200 coins, per convert
    [quotes] = endpoint(CMC, "quotes_latest").requests(s)
    assert quotes.path == "/v2/cryptocurrency/quotes/latest" and quotes.params["id"] == "1,1027"
    assert CMC.auth_headers(CoinMarketCapSettings(api_key=SecretStr("k"))) == {
        "X-CMC_PRO_API_KEY": "k"
    }
    assert CMC.auth_headers(CoinMarketCapSettings()) == {}


def test_dex_spot_pairs_follow_scroll_id_from_last_pair_or_top_level() -> None:
    s = CmcDexSettings(networks=["ethereum"], spot_pairs_limit=2, spot_pairs_max_pages=3)
    ep = endpoint(DEX, "spot_pairs_latest")
    [first] = ep.requests(s)
    assert first.params == {"network_slug": "ethereum", "limit": "2"}
    page = {"data": [{"scroll_id": "a"}, {"scroll_id": "b"}]}
    second = ep.next_page(first, page, s)
    assert second is not None and second.params["scroll_id"] == "b"
    top = ep.next_page(second, {"data": [{}, {}], "scroll_id": "c"}, s)
    assert top is not None and top.params["scroll_id"] == "c" and top.page == 3
    assert ep.next_page(top, page, s) is None  # max pages
    assert ep.next_page(first, {"data": [{"scroll_id": "a"}]}, s) is None  # short page
    assert ep.next_page(first, [{"scroll_id": "x"}, {"scroll_id": "y"}], s) is not None


def test_dex_pair_quotes_one_request_per_network() -> None:
    s = CmcDexSettings(pairs={"ethereum": ["0xa", "0xb"], "solana": []})
    reqs = endpoint(DEX, "pairs_quotes_latest").requests(s)
    assert reqs == [
        Request(
            "pairs_quotes_latest",
            "/v4/dex/pairs/quotes/latest",
            {"network_slug": "ethereum", "contract_address": "0xa,0xb"},
        )
    ]


def test_feargreed_asks_for_json_with_limit() -> None:
    [req] = endpoint(FNG, "fng").requests(FearGreedSettings(limit=7))
    assert req.path == "/fng/" and req.params == {"limit": "7", "format": "json"}
    assert FNG.auth_headers(FearGreedSettings(api_key=SecretStr("k"))) == {}
