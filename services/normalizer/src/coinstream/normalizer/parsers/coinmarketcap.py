"""CoinMarketCap Pro REST: listings, quotes, info and Fear & Greed.

Every body is ``{"data": ..., "status": {...}}``; a non-zero ``status.error_code`` is an error
even on HTTP 200. CMC ids (ints) identify assets; symbols are not unique (a quotes lookup by
symbol may give an *array* per symbol) and are never used alone to identify an asset.
"""

from __future__ import annotations

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
    to_decimal,
)
from coinstream.schemas import AssetMetadataEvent, deterministic_id
from coinstream.schemas.fastenvelope import Envelope

SOURCE = "coinmarketcap"
# CMC's documented Fear & Greed bands (used only when the body has no classification).
BANDS = ((19, "Extreme Fear"), (39, "Fear"), (59, "Neutral"), (79, "Greed"), (100, "Extreme Greed"))


def band(value: Any) -> str | None:
    number = to_decimal(value)
    for upper, label in BANDS:
        if number <= upper:
            return label
    return None


def parse(env: Envelope, registry: Registry, hint: str | None = None) -> list[AnyEvent]:
    body = as_dict(loads(env.payload), "coinmarketcap body")
    status = body.get("status")
    if isinstance(status, dict) and status.get("error_code") not in (0, "0", None):
        raise ParseError(
            f"coinmarketcap error {status.get('error_code')}: {status.get('error_message')}"
        )
    data = require(body, "data", "coinmarketcap body")
    channel = env.channel
    if channel.endswith("/cryptocurrency/listings/latest"):
        return _listings(env, registry, as_list(data, "listings data"))
    if channel.endswith("/cryptocurrency/quotes/latest"):
        return _listings(env, registry, _values(data, "quotes data"))
    if channel.endswith("/cryptocurrency/info"):
        return [_info(env, registry, item) for item in _values(data, "info data")]
    if channel.endswith("/fear-and-greed/latest") or channel.endswith("/fear-and-greed/historical"):
        rows = data if isinstance(data, list) else [data]
        return [_fear_greed(env, as_dict(r, "fear-and-greed data")) for r in rows]
    raise channel_error(env)


def _values(data: Any, where: str) -> list[dict[str, Any]]:
    """A map keyed by id/symbol/slug; each value an object or (symbol lookups) an array."""
    out: list[dict[str, Any]] = []
    for value in as_dict(data, where).values():
        for item in value if isinstance(value, list) else [value]:
            out.append(as_dict(item, where))
    return out


def _asset_id(registry: Registry, item: dict[str, Any]) -> tuple[int, str]:
    cmc_id = opt_int(require(item, "id", "coinmarketcap item"), "id")
    if cmc_id is None:
        raise ParseError("coinmarketcap item has an empty 'id'")
    return cmc_id, registry.by_cmc(cmc_id)


def _platforms(item: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    platform = item.get("platform")
    if isinstance(platform, dict) and platform.get("token_address"):
        chain = str(platform.get("slug") or platform.get("name"))
        out[chain] = contract_address(str(platform["token_address"]))
    for entry in item.get("contract_address") or ():
        if isinstance(entry, dict) and entry.get("contract_address"):
            p = entry.get("platform") or {}
            chain = (p.get("coin") or {}).get("slug") or p.get("name") or "unknown"
            out[str(chain)] = contract_address(str(entry["contract_address"]))
    return out


def _tags(item: dict[str, Any]) -> tuple[str, ...]:
    tags = item.get("tags") or ()
    return tuple(
        t if isinstance(t, str) else str(t.get("slug")) for t in tags if isinstance(t, str | dict)
    )


def _listings(env: Envelope, registry: Registry, items: list[Any]) -> list[AnyEvent]:
    out: list[AnyEvent] = []
    for raw_item in items:
        item = as_dict(raw_item, "coinmarketcap item")
        cmc_id, asset_id = _asset_id(registry, item)
        code = str(require(item, "symbol", "coinmarketcap item")).upper()
        updated = item.get("last_updated")
        for convert, raw_q in as_dict(item.get("quote") or {}, "quote").items():
            q = as_dict(raw_q, f"quote.{convert}")
            if q.get("price") is None:
                continue
            q_updated = q.get("last_updated") or updated
            event_time = opt_time(q_updated, name="last_updated") or env.received_at
            out.append(
                price(
                    kind="aggregate",
                    source=SOURCE,
                    event_id=deterministic_id(
                        "aggregate", SOURCE, asset_id, convert, q_updated or event_time.isoformat()
                    ),
                    event_time=event_time,
                    received_at=env.received_at,
                    symbol=f"{code}-{convert.upper()}",
                    base=code,
                    quote=convert.upper(),
                    asset_id=asset_id,
                    native_symbol=str(cmc_id),
                    price=opt_decimal(q.get("price"), "price"),
                    quote_volume_24h=opt_decimal(q.get("volume_24h"), "volume_24h"),
                    market_cap=opt_decimal(q.get("market_cap"), "market_cap"),
                    change_24h_pct=opt_decimal(q.get("percent_change_24h"), "percent_change_24h"),
                )
            )
        attributes = {
            k: json_safe(item.get(k))
            for k in ("cmc_rank", "num_market_pairs", "date_added", "infinite_supply", "is_active")
            if item.get(k) is not None
        }
        out.append(
            _metadata(
                env, asset_id, opt_time(updated, name="last_updated") or env.received_at,
                name=item.get("name"), symbol=code, slug=item.get("slug"),
                categories=_tags(item), source_ids={"coinmarketcap": str(cmc_id)},
                platforms=_platforms(item),
                circulating_supply=opt_decimal(item.get("circulating_supply"), "circulating_supply"),
                total_supply=opt_decimal(item.get("total_supply"), "total_supply"),
                max_supply=opt_decimal(item.get("max_supply"), "max_supply"),
                attributes=attributes,
            )
        )  # fmt: skip
    return out


def _metadata(env: Envelope, asset_id: str, event_time: Any, **fields: Any) -> AssetMetadataEvent:
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


def _info(env: Envelope, registry: Registry, item: dict[str, Any]) -> AnyEvent:
    cmc_id, asset_id = _asset_id(registry, item)
    attributes = {
        k: json_safe(item.get(k))
        for k in ("logo", "category", "date_added", "date_launched", "notice")
        if item.get(k)
    }
    return _metadata(
        env, asset_id, env.received_at,
        name=item.get("name"), symbol=str(item.get("symbol") or "").upper() or None,
        slug=item.get("slug"), description=item.get("description") or None,
        categories=_tags(item), source_ids={"coinmarketcap": str(cmc_id)},
        platforms=_platforms(item), links=links_of(item.get("urls")), attributes=attributes,
    )  # fmt: skip


def _fear_greed(env: Envelope, row: dict[str, Any]) -> AnyEvent:
    value = to_decimal(require(row, "value", "fear-and-greed"), "value")
    stamp = row.get("update_time") or row.get("timestamp")
    event_time = parse_time(stamp, "s", "update_time") if stamp is not None else env.received_at
    return sentiment(
        env, SOURCE, "market", "fear_greed", value, event_time,
        classification=row.get("value_classification") or band(value), unit="index",
    )  # fmt: skip


PLUGIN = ParserPlugin(parse)
"""The entry point (an aggregator: its prices feed no candles or consolidation)."""
