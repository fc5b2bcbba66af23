"""Canonical event models (schema version 1).

Every event has a deterministic ``event_id``, a ``schema_version``, ``event_time`` (when it
happened at the source) and ``received_at`` (when Coinstream received it), both UTC. Prices and
sizes are exact decimals serialized as strings. Changes within version 1 are additive only.

Every model enforces the boundary contract of ``coinstream.schemas.limits``: bounded finite
decimals, positive prices, non-negative sizes, canonical symbols, printable identifiers, and
``event_time`` between 2009-01-03 and ``received_at`` plus a clock skew (``limits.configure``,
5 minutes by default; a validation context ``{"max_future_skew": timedelta}`` overrides it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationInfo, model_validator

from coinstream.schemas import limits
from coinstream.schemas.types import (
    AssetCode,
    CanonicalSymbol,
    DisplayText,
    ExactDecimal,
    FreeText,
    Identifier,
    NonNegativeDecimal,
    PositiveDecimal,
    SourceName,
    TradeId,
    UtcDatetime,
)

SCHEMA_VERSION = 1

Severity = Literal["info", "warning", "critical"]


class Event(BaseModel):
    """Fields every canonical event carries."""

    # Readers ignore unknown fields (an older reader keeps working when a later release of
    # version 1 adds one); the published JSON Schema is closed, so a producer that writes a
    # field this release does not define fails validation.
    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        ser_json_inf_nan="strings",
        json_schema_extra={"additionalProperties": False},
    )

    schema_version: Literal[1] = 1
    event_id: Identifier = Field(description="Deterministic id: the same native event, the same id")
    event_time: UtcDatetime = Field(
        description="When it happened at the source (UTC); not before 2009-01-03 and at most "
        "the allowed clock skew (default 5 minutes) after received_at"
    )
    received_at: UtcDatetime = Field(description="When Coinstream received it (UTC)")
    source: SourceName = Field(description="Venue or provider the data came from, e.g. binance")
    revision: int = Field(0, ge=0, description="Increases when an event is amended (same id)")

    @model_validator(mode="after")
    def _times_in_range(self, info: ValidationInfo) -> Any:
        skew = None
        if isinstance(info.context, dict):
            given = info.context.get("max_future_skew")
            if isinstance(given, timedelta):
                skew = given
        limits.check_event_time(self.event_time, self.received_at, skew)
        return self

    def to_json(self) -> bytes:
        """The canonical wire form: UTF-8 JSON, decimals as strings."""
        return self.model_dump_json(exclude_none=True).encode()


class PriceEvent(Event):
    """A trade, a quote/ticker, an aggregator price or a consolidated price for one instrument.

    Topic ``coinstream.prices.v1``, keyed by ``symbol``, with ``|<market>`` for derivatives
    and ``|<asset_id>`` for an asset the registry does not know (so two coins sharing a ticker,
    or a spot and a perpetual market, never share a key): ``BTC-USDT``,
    ``BTC-USDT|perpetual``, ``UNI-USD|coingecko:uniswap-2``.
    """

    type: Literal["price"] = "price"
    kind: Literal["trade", "quote", "ticker", "aggregate", "consolidated"]
    market: Literal["spot", "perpetual", "future"] | None = Field(
        None, description="Market type of a venue instrument; absent means spot"
    )
    symbol: CanonicalSymbol = Field(description="Canonical instrument, BASE-QUOTE, e.g. BTC-USDT")
    base: AssetCode = Field(description="Canonical base asset code, e.g. BTC")
    quote: AssetCode = Field(description="Canonical quote asset code, e.g. USDT or USD")
    asset_id: Identifier | None = Field(
        None, description="Canonical asset id of the base, e.g. bitcoin"
    )
    native_symbol: DisplayText | None = Field(
        None, description="The source's own symbol, e.g. BTCUSDT (any script)"
    )
    price: PositiveDecimal | None = None
    size: NonNegativeDecimal | None = None
    side: Literal["buy", "sell"] | None = Field(None, description="Taker side of a trade")
    trade_id: TradeId | None = None
    bid: PositiveDecimal | None = None
    bid_size: NonNegativeDecimal | None = None
    ask: PositiveDecimal | None = None
    ask_size: NonNegativeDecimal | None = None
    volume_24h: NonNegativeDecimal | None = Field(
        None, description="Traded in the last 24 h, in units of the base asset"
    )
    quote_volume_24h: NonNegativeDecimal | None = Field(
        None, description="Traded in the last 24 h, in units of the quote asset (USD for USD)"
    )
    market_cap: NonNegativeDecimal | None = Field(
        None, description="Market capitalisation in units of the quote asset"
    )
    change_24h_pct: ExactDecimal | None = Field(
        None, description="Price change over 24 h in percent (1.5 means +1.5 %), -100 or more"
    )
    contributors: tuple[Identifier, ...] = Field((), description="Venues in a consolidated price")
    network: Identifier | None = Field(
        None,
        description="Blockchain of an on-chain price or trade, as Coinstream names chains "
        "(ethereum, bsc, solana, ...); absent for exchanges and aggregators",
    )
    contract_address: Identifier | None = Field(
        None,
        description="Token contract an on-chain token price is for (0x hex in lower case, "
        "other chains as the chain spells it)",
    )
    pool_address: Identifier | None = Field(
        None, description="Pool (pair contract) an on-chain trade executed in"
    )
    tx_hash: Identifier | None = Field(None, description="Transaction of an on-chain trade")
    quote_size: NonNegativeDecimal | None = Field(
        None,
        description="Amount of the quote asset a trade exchanged, in quote-asset units "
        "(on-chain swaps report both amounts; size is the base amount)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        if self.symbol != f"{self.base}-{self.quote}":
            raise ValueError(
                f"symbol {self.symbol!r} does not match base {self.base!r} and quote {self.quote!r}"
            )
        if self.change_24h_pct is not None and self.change_24h_pct < -100:
            raise ValueError(
                f"change_24h_pct {self.change_24h_pct} is below -100 (a price cannot fall more)"
            )
        return self

    @property
    def onchain(self) -> str | None:
        """``network:pool`` (or ``network:contract``) of an on-chain price, else ``None``."""
        return onchain_market(self.network, self.pool_address, self.contract_address)

    @property
    def key(self) -> bytes:
        return price_key(self.symbol, self.market, self.asset_id, self.onchain).encode()


def onchain_market(
    network: str | None, pool_address: str | None, contract_address: str | None
) -> str | None:
    """The on-chain market a price or candle is of: ``<network>:<pool>`` for a pool's trades
    and candles, ``<network>:<contract>`` for a token's price; ``None`` off-chain."""
    where = pool_address or contract_address
    return f"{network}:{where}" if network and where else None


def price_key(
    symbol: str, market: str | None, asset_id: str | None, onchain: str | None = None
) -> str:
    """The Kafka key of a price event (see ``PriceEvent``): the symbol, then ``|<market>``
    for a derivative, ``|<network>:<pool or contract>`` for an on-chain market (two pools of
    one pair are two markets) and ``|<asset_id>`` for an asset the registry lacks."""
    key = symbol
    if market is not None and market != "spot":
        key = f"{key}|{market}"
    if onchain is not None and not (asset_id or "").endswith(onchain):
        key = f"{key}|{onchain}"  # (a token's namespaced asset id already names it)
    if asset_id is not None and ":" in asset_id:  # namespaced: an asset the registry lacks
        key = f"{key}|{asset_id}"
    return key


class SentimentEvent(Event):
    """A sentiment or activity figure a source reported (never synthesised).

    Topic ``coinstream.sentiment.v1``, keyed by ``subject:metric``.
    """

    type: Literal["sentiment"] = "sentiment"
    subject: Identifier = Field(description="'market' or a canonical asset id")
    metric: Identifier = Field(description="e.g. fear_greed, votes_up_pct, twitter_followers")
    value: ExactDecimal
    classification: DisplayText | None = Field(None, description="Band label, e.g. Extreme Fear")
    unit: DisplayText | None = None

    @property
    def key(self) -> bytes:
        return f"{self.subject}:{self.metric}".encode()


class AssetMetadataEvent(Event):
    """Descriptive data about an asset, an exchange, a DEX pair or a venue instrument.

    Topic ``coinstream.metadata.v1`` (compacted), keyed by ``entity_id``.
    """

    type: Literal["metadata"] = "metadata"
    entity: Literal["asset", "exchange", "dex_pair", "instrument"]
    entity_id: Identifier = Field(description="Canonical id with kind prefix, e.g. asset:bitcoin")
    name: DisplayText | None = None
    symbol: DisplayText | None = Field(None, description="The provider's ticker (any script)")
    slug: DisplayText | None = None
    description: FreeText | None = None
    categories: tuple[str, ...] = ()
    source_ids: dict[str, str] = Field(default_factory=dict, description="Ids at each source")
    platforms: dict[str, str] = Field(default_factory=dict, description="chain -> contract")
    links: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    circulating_supply: NonNegativeDecimal | None = Field(None, description="In asset units")
    total_supply: NonNegativeDecimal | None = Field(None, description="In asset units")
    max_supply: NonNegativeDecimal | None = Field(None, description="In asset units")
    country: DisplayText | None = None
    year_established: int | None = Field(None, ge=1000, le=9999)
    trust_score: ExactDecimal | None = Field(None, description="The source's own scale")
    volume_24h: NonNegativeDecimal | None = Field(
        None, description="24 h volume, in ``volume_unit``"
    )
    volume_unit: DisplayText | None = Field(
        None, description="Unit of ``volume_24h`` (e.g. BTC for exchanges, USD for DEX pairs)"
    )
    network: DisplayText | None = None
    dex: DisplayText | None = None
    contract_address: Identifier | None = None
    base_asset_id: Identifier | None = None
    quote_asset_id: Identifier | None = None
    attributes: dict[str, JsonValue] = Field(default_factory=dict)

    @property
    def key(self) -> bytes:
        return self.entity_id.encode()


class CandleEvent(Event):
    """An event-time OHLCV candle built from trades, or a source's own candle (an exchange's
    kline, an aggregator's on-chain OHLCV). ``event_time`` is the candle's open time.

    A late trade inside the grace period amends the candle: same ``event_id``, higher
    ``revision``. Topic ``coinstream.candles.v1``, keyed by ``venue:symbol`` (an on-chain
    candle adds ``|<network>:<pool or contract>``).
    """

    type: Literal["candle"] = "candle"
    venue: SourceName
    symbol: CanonicalSymbol
    interval: Identifier = "1m"
    open_time: UtcDatetime
    close_time: UtcDatetime
    open: PositiveDecimal
    high: PositiveDecimal
    low: PositiveDecimal
    close: PositiveDecimal
    volume: NonNegativeDecimal
    quote_volume: NonNegativeDecimal
    vwap: PositiveDecimal
    trade_count: int = Field(ge=0)
    final: bool = Field(False, description="True once the watermark passed close + grace")
    network: Identifier | None = Field(None, description="Blockchain of an on-chain candle")
    pool_address: Identifier | None = Field(
        None, description="Pool (pair contract) an on-chain candle is of"
    )
    contract_address: Identifier | None = Field(
        None, description="Token contract an on-chain candle prices"
    )
    estimated: tuple[Identifier, ...] | None = Field(
        None,
        description="Fields the source did not report and Coinstream filled in (candles of "
        "aggregators, which send OHLC and a quote volume only): vwap is the typical price "
        "(high + low + close) / 3, volume is quote_volume / vwap, trade_count is 0 (unknown). "
        "Absent: every field is the source's or Coinstream's own count",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        if self.close_time <= self.open_time:
            raise ValueError("close_time must be after open_time")
        if not (self.low <= min(self.open, self.close) and max(self.open, self.close) <= self.high):
            raise ValueError(
                f"OHLC out of order: open {self.open}, high {self.high}, low {self.low}, "
                f"close {self.close} (low <= open, close <= high)"
            )
        return self

    @property
    def key(self) -> bytes:
        onchain = onchain_market(self.network, self.pool_address, self.contract_address)
        return (
            f"{self.venue}:{self.symbol}|{onchain}" if onchain else f"{self.venue}:{self.symbol}"
        ).encode()


FeedStatus = Literal[
    "connected",
    "disconnected",
    "gap",
    "stale",
    "resumed",
    "rate_limited",
    "source_error",
    "circuit_open",
    "circuit_closed",
    "gap_filled",
    "gap_unrecoverable",
]


class FeedStatusEvent(Event):
    """Feed health: disconnect windows, sequence gaps, stale streams, rate limits, errors.

    A ``gap`` names the missing ids (``details.first_missing``/``last_missing``) and the time
    window; a later ``gap_filled`` says the venue's REST history supplied them (published as
    raw envelopes with ``backfilled=true``), ``gap_unrecoverable`` which ids could not be
    fetched and why (``details.reason``). The three share ``details.gap_id``.

    Topic ``coinstream.feed-status.v1``, keyed by ``source[:symbol]``.
    """

    type: Literal["feed_status"] = "feed_status"
    status: FeedStatus
    symbol: DisplayText | None = None
    channel: DisplayText | None = None
    window_start: UtcDatetime | None = Field(None, description="Start of the gap/outage")
    window_end: UtcDatetime | None = Field(None, description="End of the gap/outage")
    cause: FreeText = ""
    details: dict[str, JsonValue] = Field(default_factory=dict)

    @property
    def key(self) -> bytes:
        return (f"{self.source}:{self.symbol}" if self.symbol else self.source).encode()


class ServiceHealthEvent(Event):
    """A service's periodic self-report: readiness and error counters per source.

    Published on ``coinstream.feed-status.v1`` (``type`` = ``service_health``), keyed by
    ``service``. ``source`` is the service name.
    """

    type: Literal["service_health"] = "service_health"
    service: SourceName
    instance: DisplayText
    status: Literal["ready", "degraded", "unready", "stopping"]
    checks: dict[str, str] = Field(default_factory=dict)
    counters: dict[str, int] = Field(default_factory=dict, description="Totals since start")

    @property
    def key(self) -> bytes:
        return self.service.encode()


class AlertEvent(Event):
    """A state change of an alert: pending, firing, resolved, notified or silenced.

    Topic ``coinstream.alerts.v1``, keyed by ``fingerprint``. ``source`` is ``alerts``.
    """

    type: Literal["alert"] = "alert"
    fingerprint: Identifier = Field(description="Stable id of the alert instance (rule + labels)")
    rule_id: DisplayText
    rule_type: DisplayText
    status: Literal["pending", "firing", "resolved", "notified", "silenced"]
    severity: Severity = "warning"
    subject: DisplayText | None = Field(
        None, description="Symbol, asset or source the alert is about"
    )
    summary: FreeText
    labels: dict[str, str] = Field(default_factory=dict)
    value: ExactDecimal | None = None
    threshold: ExactDecimal | None = None
    starts_at: UtcDatetime | None = None
    ends_at: UtcDatetime | None = None
    receivers: tuple[str, ...] = ()

    @property
    def key(self) -> bytes:
        return self.fingerprint.encode()


FeedEvent = Annotated[FeedStatusEvent | ServiceHealthEvent, Field(discriminator="type")]
"""What ``coinstream.feed-status.v1`` carries."""

AnyEvent = Annotated[
    PriceEvent
    | SentimentEvent
    | AssetMetadataEvent
    | CandleEvent
    | FeedStatusEvent
    | ServiceHealthEvent
    | AlertEvent,
    Field(discriminator="type"),
]
"""Any canonical event, discriminated by ``type``."""
