"""REST source parsers (CoinGecko, CoinMarketCap, CMC DEX, alternative.me) on documented bodies."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from coinstream.normalizer.errors import ParseError
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.parsers import PARSERS
from coinstream.schemas import AssetMetadataEvent, Event, PriceEvent, SentimentEvent

from .normalizer_helpers import env, wire


def parse(
    source: str, channel: str, payload: Any, params: dict[str, Any] | None = None
) -> list[Event]:
    events = PARSERS[source](env(source, channel, payload, params=params), Registry(), None)
    return [wire(e) for e in events]


def of(events: list[Event], cls: type) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


SIMPLE_PRICE = '{"bitcoin": {"usd": 67187.3358936566, "usd_market_cap": 1317802988326.25, "usd_24h_vol": 31260929299.5248, "usd_24h_change": 3.63727894677354, "last_updated_at": 1711356300}, "some-unknown-coin": {"usd": 1}}'


def test_coingecko_simple_price_exact_and_seconds() -> None:
    event, unknown = parse("coingecko", "/simple/price", SIMPLE_PRICE)
    assert isinstance(unknown, PriceEvent) and unknown.asset_id == "coingecko:some-unknown-coin"
    assert isinstance(event, PriceEvent)
    assert (event.kind, event.symbol, event.asset_id) == ("aggregate", "BTC-USD", "bitcoin")
    assert event.price == Decimal("67187.3358936566")
    assert event.market_cap == Decimal("1317802988326.25")
    assert event.quote_volume_24h == Decimal("31260929299.5248")
    assert event.event_time.isoformat() == "2024-03-25T08:45:00+00:00"


def test_coingecko_simple_price_stale_change_is_null() -> None:
    body = {"bitcoin": {"usd": 1, "usd_24h_change": None, "last_updated_at": 1711356300}}
    [event] = parse("coingecko", "/simple/price", body)
    assert event.change_24h_pct is None


MARKETS_WETH = '[{"id": "weth", "symbol": "weth", "name": "WETH", "image": "https://assets.coingecko.com/coins/images/2518/large/weth.png?1628852295", "current_price": 3002.76, "market_cap": 0, "market_cap_rank": null, "fully_diluted_valuation": null, "total_volume": 1534150740, "high_24h": 3034.74, "low_24h": 2892.53, "price_change_24h": 87.31, "price_change_percentage_24h": 2.99471, "market_cap_change_24h": 0, "market_cap_change_percentage_24h": 0, "circulating_supply": 0, "total_supply": 6752436.46794718, "max_supply": null, "ath": 4863.7, "ath_change_percentage": -38.25067, "ath_date": "2021-11-10T16:29:22.565Z", "atl": 0, "atl_change_percentage": 761019388975043000000, "atl_date": "2020-10-28T10:54:30.835Z", "roi": null, "last_updated": "2022-03-22T18:12:18.127Z"}, {"id": "old-coin", "symbol": "btc", "name": "Old", "current_price": "7000.5", "price_change_24h": "299.72373285508", "circulating_supply": "17236100.0", "last_updated": "2018-01-01T00:00:00.000Z"}]'


def test_coingecko_markets_prices_metadata_and_odd_numbers() -> None:
    events = parse("coingecko", "/coins/markets", MARKETS_WETH, params={"vs_currency": "eur"})
    weth, old = of(events, PriceEvent)
    assert (weth.symbol, weth.asset_id, weth.price, weth.market_cap) == (
        "WETH-EUR",
        "weth",
        Decimal("3002.76"),
        Decimal(0),
    )
    assert weth.event_time.isoformat() == "2022-03-22T18:12:18.127000+00:00"
    meta = of(events, AssetMetadataEvent)
    assert meta[0].entity_id == "asset:weth" and meta[0].max_supply is None
    assert meta[0].attributes["atl_change_percentage"] == "761019388975043000000"
    # a second coin with ticker "btc" is NOT bitcoin: it keeps its own namespaced id
    assert (old.symbol, old.asset_id, old.price) == (
        "BTC-EUR",
        "coingecko:old-coin",
        Decimal("7000.5"),
    )
    assert meta[1].circulating_supply == Decimal("17236100.0")


COIN = {
    "id": "bitcoin", "symbol": "btc", "name": "Bitcoin", "web_slug": "bitcoin", "asset_platform_id": None,
    "platforms": {"": ""}, "categories": ["Cryptocurrency", "Layer 1 (L1)"], "description": {"en": "Bitcoin is ..."},
    "links": {"homepage": ["http://www.bitcoin.org", "", ""], "repos_url": {"github": ["https://github.com/bitcoin/bitcoin"], "bitbucket": []}},
    "genesis_date": "2009-01-03", "sentiment_votes_up_percentage": 84.07, "sentiment_votes_down_percentage": 15.93,
    "watchlist_portfolio_users": 1541900, "market_cap_rank": 1,
    "market_data": {"current_price": {"usd": 69840, "btc": 1}, "total_value_locked": None, "roi": None, "price_change_percentage_24h": 2.37311, "circulating_supply": 19675962, "last_updated": "2024-04-07T15:24:51.021Z"},
    "community_data": {"facebook_likes": None, "twitter_followers": 6585597, "reddit_average_posts_48h": 0, "reddit_average_comments_48h": 0, "reddit_subscribers": 0, "reddit_accounts_active_48h": 0, "telegram_channel_user_count": None},
    "developer_data": {"forks": 36426, "stars": 73168, "subscribers": 3967, "total_issues": 7743, "closed_issues": 7380, "pull_requests_merged": 11215, "pull_request_contributors": 846, "code_additions_deletions_4_weeks": {"additions": 1570, "deletions": -1948}, "commit_count_4_weeks": 108, "last_4_weeks_commit_activity_series": []},
    "status_updates": [], "last_updated": "2024-04-07T15:24:51.021Z",
}  # fmt: skip


def test_coingecko_coin_gives_sentiment_activity_metadata_and_price() -> None:
    events = parse("coingecko", "/coins/{id}", COIN)
    sentiment = {e.metric: e for e in of(events, SentimentEvent)}
    assert sentiment["votes_up_pct"].value == Decimal("84.07")
    assert sentiment["votes_up_pct"].subject == "bitcoin"
    assert sentiment["twitter_followers"].value == 6585597
    assert sentiment["code_deletions_4_weeks"].value == -1948
    assert (
        "facebook_likes" not in sentiment and "telegram_channel_user_count" not in sentiment
    )  # nulls skipped
    assert sentiment["reddit_subscribers"].value == 0  # zeros kept
    [meta] = of(events, AssetMetadataEvent)
    assert meta.description == "Bitcoin is ..." and meta.platforms == {}
    assert meta.links == {
        "homepage": ("http://www.bitcoin.org",),
        "repos_url.github": ("https://github.com/bitcoin/bitcoin",),
    }
    assert meta.categories == ("Cryptocurrency", "Layer 1 (L1)")
    [price] = of(events, PriceEvent)
    assert (price.symbol, price.price) == ("BTC-USD", Decimal(69840))


def test_coingecko_coin_without_votes_has_no_vote_events() -> None:
    events = parse(
        "coingecko",
        "/coins/{id}",
        {**COIN, "sentiment_votes_up_percentage": None, "sentiment_votes_down_percentage": None},
    )
    assert not [e for e in of(events, SentimentEvent) if e.metric.startswith("votes")]


def test_coingecko_exchanges_become_exchange_metadata() -> None:
    body = [
        {
            "id": "binance",
            "name": "Binance",
            "year_established": 2017,
            "country": "Cayman Islands",
            "description": "",
            "url": "https://www.binance.com/",
            "image": "https://x/binance.jpg",
            "has_trading_incentive": False,
            "trust_score": 10,
            "trust_score_rank": 1,
            "trade_volume_24h_btc": 207319.133772613,
            "trade_volume_24h_btc_normalized": 81673.2971244154,
        }
    ]
    [meta] = parse("coingecko", "/exchanges", body)
    assert isinstance(meta, AssetMetadataEvent)
    assert (meta.entity, meta.entity_id, meta.country, meta.year_established) == (
        "exchange",
        "exchange:binance",
        "Cayman Islands",
        2017,
    )
    assert (meta.trust_score, meta.volume_24h) == (Decimal(10), Decimal("207319.133772613"))
    assert meta.description is None


@pytest.mark.parametrize("wrapper", ["data", "date"])
def test_coingecko_global_market_figures(wrapper: str) -> None:
    body = {
        wrapper: {
            "active_cryptocurrencies": 13690,
            "markets": 1046,
            "total_market_cap": {"btc": 39, "usd": 2721226850772.63},
            "total_volume": {"usd": 69595170593.2},
            "market_cap_percentage": {"btc": 50.4465263233584, "eth": 14.9228066918211},
            "market_cap_change_percentage_24h_usd": 1.72179506060272,
            "updated_at": 1712512855,
        }
    }
    events = {e.metric: e for e in parse("coingecko", "/global", body)}
    assert events["dominance_btc"].value == Decimal("50.4465263233584")
    assert events["total_market_cap_usd"].value == Decimal("2721226850772.63")
    assert events["active_cryptocurrencies"].event_time.isoformat() == "2024-04-07T18:00:55+00:00"


def test_coingecko_error_body_is_a_parse_error() -> None:
    body = '{"status":{"error_code":429,"error_message":"You\'ve exceeded the Rate Limit."}}'
    with pytest.raises(ParseError, match="429"):
        parse("coingecko", "/simple/price", body)


LISTINGS = {
    "status": {"timestamp": "2019-02-08T12:29:28.506Z", "error_code": 0, "error_message": None, "elapsed": 4, "credit_count": 1},
    "data": [
        {"id": 1, "name": "Bitcoin", "symbol": "BTC", "slug": "bitcoin", "circulating_supply": 17526825, "total_supply": 17526825, "max_supply": 21000000, "date_added": "2013-04-28T00:00:00.000Z", "num_market_pairs": 6600, "tags": ["mineable"], "platform": None, "cmc_rank": 1, "last_updated": "2019-02-08T12:28:26.000Z", "quote": {"USD": {"price": 3453.70296808, "volume_24h": 5477698705.81813, "percent_change_1h": 0.261993, "percent_change_24h": 1.07139, "percent_change_7d": -0.38027, "market_cap": 60532447523.518745, "last_updated": "2019-02-08T12:28:26.000Z"}}},
        {"id": 9999001, "name": "Other Tether", "symbol": "USDT", "slug": "other-tether", "max_supply": None, "tags": [], "platform": {"id": 1027, "name": "Ethereum", "symbol": "ETH", "slug": "ethereum", "token_address": "0xabc"}, "last_updated": "2019-02-08T12:28:26.000Z", "quote": {"USD": {"price": 0.99, "last_updated": "2019-02-08T12:28:26.000Z"}}},
    ],
}  # fmt: skip


def test_cmc_listings_prices_metadata_and_symbol_collisions() -> None:
    events = parse("coinmarketcap", "/v1/cryptocurrency/listings/latest", LISTINGS)
    btc, other = of(events, PriceEvent)
    assert (btc.symbol, btc.asset_id, btc.price, btc.market_cap) == (
        "BTC-USD",
        "bitcoin",
        Decimal("3453.70296808"),
        Decimal("60532447523.518745"),
    )
    assert btc.event_time.isoformat() == "2019-02-08T12:28:26+00:00"
    assert (other.symbol, other.asset_id) == ("USDT-USD", "cmc:9999001")  # not merged with tether
    meta = of(events, AssetMetadataEvent)
    assert meta[0].categories == ("mineable",) and meta[0].max_supply == Decimal(21000000)
    assert meta[1].platforms == {"ethereum": "0xabc"} and meta[1].max_supply is None


@pytest.mark.parametrize("as_list", [False, True])
def test_cmc_quotes_map_values_may_be_objects_or_arrays(as_list: bool) -> None:
    item = {"id": 1, "name": "Bitcoin", "symbol": "BTC", "slug": "bitcoin", "is_active": 1, "is_fiat": 0, "circulating_supply": 17199862, "total_supply": 17199862, "max_supply": 21000000, "date_added": "2013-04-28T00:00:00.000Z", "num_market_pairs": 331, "cmc_rank": 1, "last_updated": "2018-08-09T21:56:28.000Z", "tags": ["mineable"], "platform": None, "self_reported_circulating_supply": None, "self_reported_market_cap": None, "minted_market_cap": 1802955697670.94, "quote": {"USD": {"price": 6602.60701122, "volume_24h": 4314444687.5194, "volume_change_24h": -0.152774, "percent_change_1h": 0.988615, "percent_change_24h": 4.37185, "percent_change_7d": -12.1352, "percent_change_30d": -12.1352, "market_cap": 852164659250.2758, "market_cap_dominance": 51, "fully_diluted_market_cap": 952835089431.14, "last_updated": "2018-08-09T21:56:28.000Z"}}}  # fmt: skip
    body = {
        "status": {"error_code": 0, "error_message": ""},
        "data": {"BTC" if as_list else "1": [item] if as_list else item},
    }
    [price] = of(parse("coinmarketcap", "/v2/cryptocurrency/quotes/latest", body), PriceEvent)
    assert (price.asset_id, price.price, price.change_24h_pct) == (
        "bitcoin",
        Decimal("6602.60701122"),
        Decimal("4.37185"),
    )


def test_cmc_info_becomes_asset_metadata_with_links() -> None:
    body = {"status": {"error_code": 0}, "data": {"1": {"urls": {"website": ["https://bitcoin.org/"], "technical_doc": ["https://bitcoin.org/bitcoin.pdf"], "twitter": [], "reddit": ["https://reddit.com/r/bitcoin"], "message_board": ["https://bitcointalk.org"], "announcement": [], "chat": [], "explorer": ["https://blockchain.info/"], "source_code": ["https://github.com/bitcoin/"]}, "logo": "https://s2.coinmarketcap.com/static/img/coins/64x64/1.png", "id": 1, "name": "Bitcoin", "symbol": "BTC", "slug": "bitcoin", "description": "Bitcoin (BTC) is a consensus network ...", "date_added": "2013-04-28T00:00:00.000Z", "date_launched": "2013-04-28T00:00:00.000Z", "tags": ["mineable"], "platform": None, "category": "coin"}}}  # fmt: skip
    [meta] = parse("coinmarketcap", "/v2/cryptocurrency/info", body)
    assert isinstance(meta, AssetMetadataEvent)
    assert (meta.entity_id, meta.slug, meta.source_ids) == (
        "asset:bitcoin",
        "bitcoin",
        {"coinmarketcap": "1"},
    )
    assert meta.links["website"] == ("https://bitcoin.org/",) and "twitter" not in meta.links
    assert meta.attributes["category"] == "coin"


def test_cmc_fear_and_greed_latest_and_historical_string_timestamps() -> None:
    [latest] = parse(
        "coinmarketcap",
        "/v3/fear-and-greed/latest",
        {
            "status": {"error_code": 0},
            "data": {
                "value": 40,
                "value_classification": "Neutral",
                "update_time": "2024-09-19T02:54:56.017Z",
            },
        },
    )
    assert isinstance(latest, SentimentEvent)
    assert (latest.metric, latest.value, latest.classification) == (
        "fear_greed",
        Decimal(40),
        "Neutral",
    )
    hist = parse(
        "coinmarketcap",
        "/v3/fear-and-greed/historical",
        {
            "data": [
                {"timestamp": "1726617600", "value": 38},
                {"timestamp": 1726531200, "value": 19},
            ]
        },
    )
    assert [e.classification for e in hist] == ["Fear", "Extreme Fear"]  # documented CMC bands
    assert hist[0].event_time.isoformat() == "2024-09-18T00:00:00+00:00"


def test_cmc_error_code_on_http_200_is_a_parse_error() -> None:
    body = {
        "status": {
            "timestamp": "2018-06-02T22:51:28.209Z",
            "error_code": 1008,
            "error_message": "You've exceeded your API Key's HTTP request rate limit.",
            "elapsed": 10,
            "credit_count": 0,
        }
    }
    with pytest.raises(ParseError, match="1008"):
        parse("coinmarketcap", "/v1/cryptocurrency/listings/latest", body)


PEPE = "0x6982508145454Ce325dDbE47a25d4ec3d2311933"
WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
SPEC_PAIR = {"contract_address": "0xA43fe16908251ee70EF74718545e4FE6C5cCEc9f", "name": "PEPE/WETH", "base_asset_id": "24478", "base_asset_ucid": "24478", "base_asset_name": "Pepe", "base_asset_symbol": "PEPE", "base_asset_contract_address": PEPE, "quote_asset_id": "2396", "quote_asset_symbol": "WETH", "quote_asset_contract_address": WETH, "dex_id": "1348", "dex_slug": "uniswap-v2", "network_id": "1", "network_slug": "Ethereum", "last_updated": "2024-05-01T10:00:00.000Z", "holders": 1000, "quote": [{"convert_id": "2781", "price": 0.000000000012, "price_by_quote_asset": 4.1e-12, "liquidity": 1e20, "volume_24h": 123.45, "percent_change_price_24h": -0.015, "last_updated": "2024-05-01T10:00:00.000Z"}]}  # fmt: skip
NESTED_PAIR = {"contract_address": "0xa43fe16908251ee70ef74718545e4fe6c5ccec9f", "network_id": 1, "network_slug": "ethereum", "dex_id": 1348, "base_asset": {"id": 24478, "symbol": "PEPE", "contract_address": PEPE}, "quote_asset": {"id": 2396, "symbol": "WETH", "contract_address": WETH}, "quote": {"2781": {"price": "0.000000000012", "price_by_quote_asset": "0.0000000000041", "last_updated": "2024-05-01T10:00:00.000Z"}}}  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [[SPEC_PAIR], {"data": [SPEC_PAIR], "scroll_id": "x"}, {"data": [NESTED_PAIR]}],
    ids=["bare-list-flat-quote-array", "data-envelope", "nested-assets-quote-map-numeric-ids"],
)
def test_cmc_dex_pairs_in_every_documented_shape(body: Any) -> None:
    for channel in ("/v4/dex/spot-pairs/latest", "/v4/dex/pairs/quotes/latest"):
        events = parse("cmc-dex", channel, json.dumps(body) if not isinstance(body, str) else body)
        usd, native = of(events, PriceEvent)
        assert (usd.symbol, usd.asset_id, usd.price) == ("PEPE-USD", "pepe", Decimal("1.2E-11"))
        assert (native.symbol, native.price) == ("PEPE-WETH", Decimal("4.1E-12"))
        assert b'"price":"0.0000000000041"' in native.to_json()
        [meta] = of(events, AssetMetadataEvent)
        assert meta.entity == "dex_pair"
        assert meta.entity_id == "dex_pair:ethereum:0xa43fe16908251ee70ef74718545e4fe6c5ccec9f"
        assert (meta.base_asset_id, meta.quote_asset_id) == ("pepe", "weth")


def test_cmc_dex_unknown_token_is_namespaced_by_chain_and_contract() -> None:
    pair = {**SPEC_PAIR, "base_asset_symbol": "PEPE", "base_asset_contract_address": "0xfeed"}
    [usd, *_] = parse("cmc-dex", "/v4/dex/spot-pairs/latest", [pair])
    assert usd.asset_id == "dex:ethereum:0xfeed"


FNG = '{"name": "Fear and Greed Index", "data": [{"value": "25", "value_classification": "Extreme Fear", "timestamp": "1639958400", "time_until_update": "62507"}, {"value": "29", "value_classification": "Fear", "timestamp": "1639872000"}], "metadata": {"error": null}}'


def test_alternative_me_fear_greed_strings_and_bands() -> None:
    newest, older = parse("feargreed", "/fng/", FNG)
    assert isinstance(newest, SentimentEvent)
    assert (newest.subject, newest.metric, newest.value, newest.classification) == (
        "market",
        "fear_greed",
        Decimal(25),
        "Extreme Fear",
    )
    assert newest.event_time.isoformat() == "2021-12-20T00:00:00+00:00"
    assert older.classification == "Fear" and older.event_id != newest.event_id


def test_alternative_me_error_metadata_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match=r"alternative\.me error"):
        parse(
            "feargreed",
            "/fng/",
            '{"name": "x", "data": [], "metadata": {"error": "Invalid limit"}}',
        )


def test_rest_unknown_endpoint_is_unsupported() -> None:
    with pytest.raises(ParseError, match="no parser"):
        parse("coingecko", "/ping", '{"gecko_says": "(V3) To the Moon!"}')


def test_same_rest_body_twice_gives_the_same_ids() -> None:
    a = parse("coinmarketcap", "/v1/cryptocurrency/listings/latest", LISTINGS)
    b = parse("coinmarketcap", "/v1/cryptocurrency/listings/latest", LISTINGS)
    assert [e.event_id for e in a] == [e.event_id for e in b]
