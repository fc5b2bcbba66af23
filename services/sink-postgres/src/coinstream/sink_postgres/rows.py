"""Canonical events to table rows (pure). One event may give rows for several tables."""

from __future__ import annotations

import json
from typing import Any

from coinstream.schemas import (
    AlertEvent,
    AssetMetadataEvent,
    CandleEvent,
    Event,
    FeedStatusEvent,
    PriceEvent,
    SentimentEvent,
    ServiceHealthEvent,
    onchain_market,
    price_key,
)
from coinstream.sink_postgres.tables import (
    ALERT_EVENTS,
    ASSETS,
    CANDLES,
    CONSOLIDATED_PRICES,
    DEX_PAIRS,
    EXCHANGES,
    FEED_STATUS,
    INSTRUMENTS,
    PRICES,
    SENTIMENT,
    SERVICE_HEALTH,
    Row,
    Table,
)

TableRows = list[tuple[Table, Row]]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def price_rows(e: PriceEvent) -> TableRows:
    """A price event: its ``prices`` (or ``consolidated_prices``) row. The venue's instrument
    row is derived per batch by ``instruments_from_prices``."""
    if e.kind == "consolidated":
        return [
            (
                CONSOLIDATED_PRICES,
                (
                    e.event_time,
                    e.event_id,
                    e.source,
                    e.symbol,
                    e.base,
                    e.quote,
                    e.asset_id,
                    e.price,
                    e.bid,
                    e.ask,
                    e.volume_24h,
                    list(e.contributors),
                    e.revision,
                    e.received_at,
                ),
            )
        ]
    row = (
        e.event_time,
        e.event_id,
        e.source,
        e.kind,
        None if e.market == "spot" else e.market,  # spot is stored as NULL, like absent
        e.symbol,
        e.base,
        e.quote,
        e.asset_id,
        e.native_symbol,
        e.price,
        e.size,
        e.side,
        e.trade_id,
        e.bid,
        e.bid_size,
        e.ask,
        e.ask_size,
        e.volume_24h,
        e.quote_volume_24h,
        e.market_cap,
        e.change_24h_pct,
        e.network,
        e.contract_address,
        e.pool_address,
        e.tx_hash,
        e.quote_size,
        e.revision,
        e.received_at,
    )
    return [(PRICES, row)]


def candle_row(e: CandleEvent) -> Row:
    """A candle's row; an on-chain candle's venue is ``<source>@<network>:<pool>`` so two
    pools of one pair never share a row."""
    onchain = onchain_market(e.network, e.pool_address, e.contract_address)
    return (
        f"{e.venue}@{onchain}" if onchain else e.venue,
        e.symbol,
        e.interval,
        e.open_time,
        e.close_time,
        e.open,
        e.high,
        e.low,
        e.close,
        e.volume,
        e.quote_volume,
        e.vwap,
        e.trade_count,
        e.final,
        e.revision,
        e.event_id,
        e.source,
        e.received_at,
        e.network,
        e.pool_address,
        e.contract_address,
        list(e.estimated) if e.estimated is not None else None,
    )


def sentiment_row(e: SentimentEvent) -> Row:
    return (
        e.source,
        e.subject,
        e.metric,
        e.event_time,
        e.value,
        e.classification,
        e.unit,
        e.revision,
        e.event_id,
        e.received_at,
    )


def metadata_rows(e: AssetMetadataEvent) -> TableRows:
    """Assets, exchanges and DEX pairs get a current row (the event's own values; the store
    merges it with the stored row, see ``entities``); instruments map venue pairs."""
    common = (
        e.entity_id,
        e.name,
        e.symbol,
        e.slug,
        e.description,
        e.source,
        e.event_id,
        e.event_time,
        e.revision,
        e.received_at,
        e.model_dump_json(exclude_none=True),
    )
    merge: tuple[Any, ...] = (
        "{}",
        e.source,
        [],
        e.event_time,
    )  # MERGE_COLUMNS of an event on its own
    if e.entity == "asset":
        return [
            (
                ASSETS,
                (
                    *common,
                    list(e.categories),
                    _json(e.source_ids),
                    _json(e.platforms),
                    _json(e.links),
                    e.circulating_supply,
                    e.total_supply,
                    e.max_supply,
                    *merge,
                ),
            )
        ]
    if e.entity == "exchange":
        return [
            (
                EXCHANGES,
                (
                    *common,
                    e.country,
                    e.year_established,
                    e.trust_score,
                    e.volume_24h,
                    _json(e.links),
                    e.volume_unit,
                    *merge,
                ),
            )
        ]
    if e.entity == "dex_pair":
        return [
            (
                DEX_PAIRS,
                (
                    *common,
                    e.network,
                    e.dex,
                    e.contract_address,
                    e.base_asset_id,
                    e.quote_asset_id,
                    e.volume_24h,
                    e.volume_unit,
                    *merge,
                ),
            )
        ]
    return [(INSTRUMENTS, instrument_row(e))]


def instrument_row(e: AssetMetadataEvent) -> Row:
    """An instrument metadata event: venue from ``attributes['venue']`` (else the source),
    symbol from ``symbol`` (else the entity id), market and base/quote from the attributes if
    given; keyed like its prices (``price_key``)."""
    attrs = e.attributes
    venue = str(attrs.get("venue") or e.source)
    symbol = e.symbol or e.entity_id.removeprefix("instrument:")
    base, _, quote = symbol.partition("-")
    native = attrs.get("native_symbol") or e.source_ids.get(venue)
    market = attrs.get("market")
    market = str(market) if market not in (None, "spot") else None
    return (
        venue,
        price_key(symbol, market, e.base_asset_id),
        symbol,
        market,
        str(native) if native is not None else None,
        str(attrs.get("base") or base or "") or None,
        str(attrs.get("quote") or quote or "") or None,
        e.base_asset_id,
        e.quote_asset_id,
        e.entity_id,
        e.name,
        e.model_dump_json(exclude_none=True),
        e.event_time,
        e.event_time,
    )


def feed_status_row(e: FeedStatusEvent) -> Row:
    return (
        e.event_time,
        e.event_id,
        e.source,
        e.status,
        e.symbol,
        e.channel,
        e.window_start,
        e.window_end,
        e.cause,
        _json(e.details),
        e.revision,
        e.received_at,
    )


def service_health_row(e: ServiceHealthEvent) -> Row:
    return (
        e.event_time,
        e.event_id,
        e.service,
        e.instance,
        e.status,
        _json(e.checks),
        _json(e.counters),
        e.revision,
        e.received_at,
    )


def alert_row(e: AlertEvent) -> Row:
    return (
        e.event_time,
        e.event_id,
        e.source,
        e.fingerprint,
        e.rule_id,
        e.rule_type,
        e.status,
        e.severity,
        e.subject,
        e.summary,
        _json(e.labels),
        e.value,
        e.threshold,
        e.starts_at,
        e.ends_at,
        list(e.receivers),
        e.revision,
        e.received_at,
    )


def event_rows(event: Event) -> TableRows:
    """Every row one canonical event contributes, tagged with its table."""
    if isinstance(event, PriceEvent):
        return price_rows(event)
    if isinstance(event, CandleEvent):
        return [(CANDLES, candle_row(event))]
    if isinstance(event, SentimentEvent):
        return [(SENTIMENT, sentiment_row(event))]
    if isinstance(event, AssetMetadataEvent):
        return metadata_rows(event)
    if isinstance(event, FeedStatusEvent):
        return [(FEED_STATUS, feed_status_row(event))]
    if isinstance(event, ServiceHealthEvent):
        return [(SERVICE_HEALTH, service_health_row(event))]
    if isinstance(event, AlertEvent):
        return [(ALERT_EVENTS, alert_row(event))]
    raise TypeError(f"no table for event type {type(event).__name__}")


_P_SOURCE = PRICES.index("source")
_P_SYMBOL = PRICES.index("symbol")
_P_TIME = PRICES.index("event_time")
_P_BASE = PRICES.index("base")
_P_QUOTE = PRICES.index("quote")
_P_ASSET = PRICES.index("asset_id")
_P_NATIVE = PRICES.index("native_symbol")
_P_MARKET = PRICES.index("market")
_P_NETWORK = PRICES.index("network")
_P_POOL = PRICES.index("pool_address")
_P_CONTRACT = PRICES.index("contract_address")


def instruments_from_prices(rows: list[Row]) -> tuple[list[Row], list[int]]:
    """One ``instruments`` row per venue instrument (venue and price key) seen in price rows:
    first and last seen, native symbol and base/quote as last reported. Returns the rows and,
    for each, the index of the price row it was last updated from (to name an origin record)."""
    seen: dict[tuple[str, str, str | None, str | None, str | None], list[Any]] = {}
    for i, r in enumerate(rows):
        onchain = onchain_market(r[_P_NETWORK], r[_P_POOL], r[_P_CONTRACT])
        key = (r[_P_SOURCE], r[_P_SYMBOL], r[_P_MARKET], r[_P_ASSET], onchain)
        t = r[_P_TIME]
        cur = seen.get(key)
        if cur is None:
            seen[key] = [t, t, r, i]
        else:
            cur[0] = min(cur[0], t)
            if t >= cur[1]:
                cur[1], cur[2], cur[3] = t, r, i
    out: list[Row] = []
    index: list[int] = []
    for (venue, symbol, market, asset_id, onchain), (first, last, r, i) in seen.items():
        out.append(
            (
                venue,
                price_key(symbol, market, asset_id, onchain),
                symbol,
                market,
                r[_P_NATIVE],
                r[_P_BASE],
                r[_P_QUOTE],
                asset_id,
                None,
                None,
                None,
                None,
                first,
                last,
            )
        )
        index.append(i)
    return out, index
