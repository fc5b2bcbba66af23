"""CoinGecko REST: /simple/price, /coins/markets, /coins/{id}, /exchanges, /global.

CoinGecko identifies coins by id (``bitcoin``); symbols (``btc``) are not unique and are never
used to identify an asset. Numbers are JSON numbers (old responses used strings: both work);
``last_updated_at`` and ``updated_at`` are Unix seconds, other times ISO-8601.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from coinstream.normalizer.errors import ParseError
from coinstream.normalizer.identity import Registry, contract_address
from coinstream.normalizer.parsers.common import (
    AnyEvent,
    ParserPlugin,
    channel_error,
    content_id,
    json_safe,
    links_of,
    price,
    sentiment,
)
from coinstream.normalizer.values import (
    as_dict,
    as_list,
    loads,
    opt_decimal,
    opt_int,
    opt_time,
    parse_time,
    require,
)
from coinstream.schemas import AssetMetadataEvent, deterministic_id
from coinstream.schemas.fastenvelope import Envelope

SOURCE = "coingecko"
COMMUNITY = (
    "facebook_likes", "twitter_followers", "reddit_average_posts_48h",
    "reddit_average_comments_48h", "reddit_subscribers", "reddit_accounts_active_48h",
    "telegram_channel_user_count",
)  # fmt: skip
DEVELOPER = (
    "forks", "stars", "subscribers", "total_issues", "closed_issues", "pull_requests_merged",
    "pull_request_contributors", "commit_count_4_weeks",
)  # fmt: skip


def parse(env: Envelope, registry: Registry, hint: str | None = None) -> list[AnyEvent]:
    body = loads(env.payload)
    if (
        isinstance(body, dict)
        and isinstance(body.get("status"), dict)
        and "error_code" in body["status"]
    ):
        status = body["status"]
        raise ParseError(
            f"coingecko error {status.get('error_code')}: {status.get('error_message')}"
        )
    if env.channel == "/simple/price":
        return _simple_price(env, registry, as_dict(body, "/simple/price body"))
    if env.channel == "/coins/markets":
        return _markets(env, registry, as_list(body, "/coins/markets body"))
    if env.channel == "/coins/{id}":
        return _coin(env, registry, as_dict(body, "/coins/{id} body"))
    if env.channel == "/exchanges":
        return [_exchange(env, as_dict(x, "exchange")) for x in as_list(body, "/exchanges body")]
    if env.channel == "/global":
        return _global(env, as_dict(body, "/global body"))
    raise channel_error(env)


def _simple_price(env: Envelope, registry: Registry, body: dict[str, Any]) -> list[AnyEvent]:
    out: list[AnyEvent] = []
    for coin_id, raw_values in body.items():
        values = as_dict(raw_values, f"/simple/price {coin_id}")
        asset_id = registry.by_coingecko(coin_id)
        # No ticker in this endpoint: an id the registry lacks keeps its namespaced asset id
        # (``coingecko:<id>``, never merged with a same-ticker asset) and the ticker learned
        # from /coins/markets, else a code derived from the id; its key carries the asset id.
        code = registry.coingecko_code(coin_id)
        updated = values.get("last_updated_at")
        event_time = parse_time(updated, "s", "last_updated_at") if updated else env.received_at
        for vs, amount in values.items():
            if "_" in vs or amount is None:
                continue  # <vs>_market_cap, <vs>_24h_vol, <vs>_24h_change, last_updated_at
            quote = vs.upper()
            out.append(
                price(
                    kind="aggregate",
                    source=SOURCE,
                    event_id=deterministic_id(
                        "aggregate", SOURCE, asset_id, quote, updated or event_time.isoformat()
                    ),
                    event_time=event_time,
                    received_at=env.received_at,
                    symbol=f"{code}-{quote}",
                    base=code,
                    quote=quote,
                    asset_id=asset_id,
                    native_symbol=coin_id,
                    price=opt_decimal(amount, vs),
                    market_cap=opt_decimal(values.get(f"{vs}_market_cap"), f"{vs}_market_cap"),
                    quote_volume_24h=opt_decimal(values.get(f"{vs}_24h_vol"), f"{vs}_24h_vol"),
                    change_24h_pct=opt_decimal(values.get(f"{vs}_24h_change"), f"{vs}_24h_change"),
                )
            )
    return out


def _vs_currency(env: Envelope) -> str:
    params = (env.request or {}).get("params") or {}
    return str(params.get("vs_currency") or "usd").upper()


def _markets(env: Envelope, registry: Registry, rows: list[Any]) -> list[AnyEvent]:
    quote = _vs_currency(env)
    out: list[AnyEvent] = []
    for raw_row in rows:
        row = as_dict(raw_row, "/coins/markets row")
        coin_id = str(require(row, "id", "/coins/markets row"))
        ticker = str(require(row, "symbol", "/coins/markets row")).upper()
        asset_id = registry.by_coingecko(coin_id)
        registry.learn_coingecko_code(coin_id, ticker)
        code = registry.code_for(asset_id, ticker)
        updated = row.get("last_updated")
        event_time = opt_time(updated, name="last_updated") or env.received_at
        if row.get("current_price") is not None:
            out.append(
                price(
                    kind="aggregate",
                    source=SOURCE,
                    event_id=deterministic_id(
                        "aggregate", SOURCE, asset_id, quote, updated or event_time.isoformat()
                    ),
                    event_time=event_time,
                    received_at=env.received_at,
                    symbol=f"{code}-{quote}",
                    base=code,
                    quote=quote,
                    asset_id=asset_id,
                    native_symbol=coin_id,
                    price=opt_decimal(row.get("current_price"), "current_price"),
                    market_cap=opt_decimal(row.get("market_cap"), "market_cap"),
                    quote_volume_24h=opt_decimal(row.get("total_volume"), "total_volume"),
                    change_24h_pct=opt_decimal(
                        row.get("price_change_percentage_24h"), "price_change_percentage_24h"
                    ),
                )
            )
        attributes = {
            k: json_safe(row.get(k))
            for k in (
                "image",
                "market_cap_rank",
                "fully_diluted_valuation",
                "ath",
                "ath_date",
                "atl",
                "atl_date",
                "atl_change_percentage",
                "roi",
            )
            if row.get(k) is not None
        }
        out.append(
            _asset_metadata(
                env, asset_id, event_time,
                name=row.get("name"), symbol=code, source_ids={"coingecko": coin_id},
                circulating_supply=opt_decimal(row.get("circulating_supply"), "circulating_supply"),
                total_supply=opt_decimal(row.get("total_supply"), "total_supply"),
                max_supply=opt_decimal(row.get("max_supply"), "max_supply"),
                attributes=attributes,
            )
        )  # fmt: skip
    return out


def _asset_metadata(
    env: Envelope, asset_id: str, event_time: datetime, **fields: Any
) -> AssetMetadataEvent:
    entity_id = f"asset:{asset_id}"
    content = {k: json_safe(v) for k, v in fields.items() if v not in (None, (), {})}
    return AssetMetadataEvent(
        event_id=content_id("metadata", SOURCE, entity_id, content=content),
        event_time=event_time,
        received_at=env.received_at,
        source=SOURCE,
        entity="asset",
        entity_id=entity_id,
        **{k: v for k, v in fields.items() if v is not None},
    )


def _coin(env: Envelope, registry: Registry, coin: dict[str, Any]) -> list[AnyEvent]:
    coin_id = str(require(coin, "id", "/coins/{id} body"))
    asset_id = registry.by_coingecko(coin_id)
    market = coin.get("market_data") or {}
    updated = coin.get("last_updated") or market.get("last_updated")
    event_time = opt_time(updated, name="last_updated") or env.received_at
    code = str(coin.get("symbol") or "").upper()
    out: list[AnyEvent] = []
    description = coin.get("description")
    if isinstance(description, dict):
        description = description.get("en") or None
    platforms = {
        str(chain): contract_address(addr)
        for chain, addr in (coin.get("platforms") or {}).items()
        if chain and isinstance(addr, str) and addr
    }
    attributes = {
        k: json_safe(coin.get(k))
        for k in (
            "genesis_date",
            "hashing_algorithm",
            "asset_platform_id",
            "market_cap_rank",
            "image",
            "country_origin",
        )
        if coin.get(k) is not None
    }
    out.append(
        _asset_metadata(
            env, asset_id, event_time,
            name=coin.get("name"), symbol=code or None, slug=coin.get("web_slug"),
            description=description or None,
            categories=tuple(c for c in coin.get("categories") or () if isinstance(c, str)),
            source_ids={"coingecko": coin_id}, platforms=platforms,
            links=links_of(coin.get("links")),
            circulating_supply=opt_decimal(market.get("circulating_supply"), "circulating_supply"),
            total_supply=opt_decimal(market.get("total_supply"), "total_supply"),
            max_supply=opt_decimal(market.get("max_supply"), "max_supply"),
            attributes=attributes,
        )
    )  # fmt: skip
    figures: list[tuple[str, Any, str | None]] = [
        ("votes_up_pct", coin.get("sentiment_votes_up_percentage"), "percent"),
        ("votes_down_pct", coin.get("sentiment_votes_down_percentage"), "percent"),
        ("watchlist_portfolio_users", coin.get("watchlist_portfolio_users"), "users"),
    ]
    community = coin.get("community_data") or {}
    figures += [(k, community.get(k), None) for k in COMMUNITY]
    developer = coin.get("developer_data") or {}
    figures += [(k, developer.get(k), None) for k in DEVELOPER]
    changes = developer.get("code_additions_deletions_4_weeks") or {}
    figures += [
        ("code_additions_4_weeks", changes.get("additions"), "lines"),
        ("code_deletions_4_weeks", changes.get("deletions"), "lines"),
    ]
    for metric, value, unit in figures:
        number = opt_decimal(value, metric)
        if number is not None:
            out.append(sentiment(env, SOURCE, asset_id, metric, number, event_time, unit=unit))
    current = (market.get("current_price") or {}).get("usd")
    if current is not None and code:
        out.append(
            price(
                kind="aggregate",
                source=SOURCE,
                event_id=deterministic_id(
                    "aggregate", SOURCE, asset_id, "USD", updated or event_time.isoformat()
                ),
                event_time=event_time,
                received_at=env.received_at,
                symbol=f"{code}-USD",
                base=code,
                quote="USD",
                asset_id=asset_id,
                native_symbol=coin_id,
                price=opt_decimal(current, "current_price.usd"),
                market_cap=opt_decimal(
                    (market.get("market_cap") or {}).get("usd"), "market_cap.usd"
                ),
                change_24h_pct=opt_decimal(
                    market.get("price_change_percentage_24h"), "price_change_percentage_24h"
                ),
            )
        )
    return out


def _exchange(env: Envelope, x: dict[str, Any]) -> AnyEvent:
    ex_id = str(require(x, "id", "exchange"))
    entity_id = f"exchange:{ex_id}"
    fields: dict[str, Any] = {
        "name": x.get("name"),
        "description": x.get("description") or None,
        "country": x.get("country"),
        "year_established": opt_int(x.get("year_established"), "year_established"),
        "trust_score": opt_decimal(x.get("trust_score"), "trust_score"),
        "volume_24h": opt_decimal(x.get("trade_volume_24h_btc"), "trade_volume_24h_btc"),
        "volume_unit": "BTC" if x.get("trade_volume_24h_btc") is not None else None,
        "links": {"website": (x["url"],)} if x.get("url") else {},
        "source_ids": {"coingecko": ex_id},
        "attributes": {
            k: json_safe(x.get(k))
            for k in (
                "image",
                "trust_score_rank",
                "has_trading_incentive",
                "trade_volume_24h_btc_normalized",
            )
            if x.get(k) is not None
        },
    }
    content = {k: json_safe(v) for k, v in fields.items() if v is not None}
    return AssetMetadataEvent(
        event_id=content_id("metadata", SOURCE, entity_id, content=content),
        event_time=env.received_at,
        received_at=env.received_at,
        source=SOURCE,
        entity="exchange",
        entity_id=entity_id,
        **{k: v for k, v in fields.items() if v is not None},
    )


def _global(env: Envelope, body: dict[str, Any]) -> list[AnyEvent]:
    data = as_dict(body.get("data", body.get("date")), "/global data")  # docs typo: "date"
    updated = data.get("updated_at", body.get("updated_at"))
    event_time = parse_time(updated, "s", "updated_at") if updated is not None else env.received_at
    figures: list[tuple[str, Decimal | None, str | None]] = [
        ("active_cryptocurrencies", opt_decimal(data.get("active_cryptocurrencies")), None),
        ("markets", opt_decimal(data.get("markets")), None),
        (
            "total_market_cap_usd",
            opt_decimal((data.get("total_market_cap") or {}).get("usd")),
            "USD",
        ),
        ("total_volume_usd", opt_decimal((data.get("total_volume") or {}).get("usd")), "USD"),
        (
            "market_cap_change_24h_pct",
            opt_decimal(
                data.get(
                    "market_cap_change_percentage_24h_usd",
                    body.get("market_cap_change_percentage_24h_usd"),
                )
            ),
            "percent",
        ),
    ]
    for code, pct in (data.get("market_cap_percentage") or {}).items():
        figures.append(
            (f"dominance_{code}", opt_decimal(pct, f"market_cap_percentage.{code}"), "percent")
        )
    return [
        sentiment(env, SOURCE, "market", metric, value, event_time, unit=unit)
        for metric, value, unit in figures
        if value is not None
    ]


PLUGIN = ParserPlugin(parse)
"""The entry point (an aggregator: its prices feed no candles or consolidation)."""
