"""Canonical event models (schema version 1).

Every event has a deterministic ``event_id``, a ``schema_version``, ``event_time`` (when it
happened at the source) and ``received_at`` (when Coinstream received it), both UTC. Prices and
sizes are exact decimals serialized as strings. Changes within version 1 are additive only.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from coinstream.schemas.types import ExactDecimal, UtcDatetime

SCHEMA_VERSION = 1

Severity = Literal["info", "warning", "critical"]


class Event(BaseModel):
    """Fields every canonical event carries."""

    model_config = ConfigDict(frozen=True, extra="ignore", ser_json_inf_nan="strings")

    schema_version: int = SCHEMA_VERSION
    event_id: str = Field(description="Deterministic id: the same native event, the same id")
    event_time: UtcDatetime = Field(description="When it happened at the source (UTC)")
    received_at: UtcDatetime = Field(description="When Coinstream received it (UTC)")
    source: str = Field(description="Venue or provider the data came from, e.g. binance")
    revision: int = Field(0, ge=0, description="Increases when an event is amended (same id)")

    def to_json(self) -> bytes:
        """The canonical wire form: UTF-8 JSON, decimals as strings."""
        return self.model_dump_json(exclude_none=True).encode()


class PriceEvent(Event):
    """A trade, a quote/ticker, an aggregator price or a consolidated price for one instrument.

    Topic ``coinstream.prices.v1``, keyed by ``symbol``.
    """

    type: Literal["price"] = "price"
    kind: Literal["trade", "quote", "ticker", "aggregate", "consolidated"]
    symbol: str = Field(description="Canonical instrument, BASE-QUOTE, e.g. BTC-USDT")
    base: str = Field(description="Canonical base asset code, e.g. BTC")
    quote: str = Field(description="Canonical quote asset code, e.g. USDT or USD")
    asset_id: str | None = Field(None, description="Canonical asset id of the base, e.g. bitcoin")
    native_symbol: str | None = Field(None, description="The source's own symbol, e.g. BTCUSDT")
    price: ExactDecimal | None = None
    size: ExactDecimal | None = None
    side: Literal["buy", "sell"] | None = Field(None, description="Taker side of a trade")
    trade_id: str | None = None
    bid: ExactDecimal | None = None
    bid_size: ExactDecimal | None = None
    ask: ExactDecimal | None = None
    ask_size: ExactDecimal | None = None
    volume_24h: ExactDecimal | None = None
    quote_volume_24h: ExactDecimal | None = None
    market_cap: ExactDecimal | None = None
    change_24h_pct: ExactDecimal | None = None
    contributors: tuple[str, ...] = Field((), description="Venues in a consolidated price")

    @property
    def key(self) -> bytes:
        return self.symbol.encode()


class SentimentEvent(Event):
    """A sentiment or activity figure a source reported (never synthesised).

    Topic ``coinstream.sentiment.v1``, keyed by ``subject:metric``.
    """

    type: Literal["sentiment"] = "sentiment"
    subject: str = Field(description="'market' or a canonical asset id")
    metric: str = Field(description="e.g. fear_greed, votes_up_pct, twitter_followers")
    value: ExactDecimal
    classification: str | None = Field(None, description="Band label, e.g. Extreme Fear")
    unit: str | None = None

    @property
    def key(self) -> bytes:
        return f"{self.subject}:{self.metric}".encode()


class AssetMetadataEvent(Event):
    """Descriptive data about an asset, an exchange, a DEX pair or a venue instrument.

    Topic ``coinstream.metadata.v1`` (compacted), keyed by ``entity_id``.
    """

    type: Literal["metadata"] = "metadata"
    entity: Literal["asset", "exchange", "dex_pair", "instrument"]
    entity_id: str = Field(description="Canonical id with kind prefix, e.g. asset:bitcoin")
    name: str | None = None
    symbol: str | None = None
    slug: str | None = None
    description: str | None = None
    categories: tuple[str, ...] = ()
    source_ids: dict[str, str] = Field(default_factory=dict, description="Ids at each source")
    platforms: dict[str, str] = Field(default_factory=dict, description="chain -> contract")
    links: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    circulating_supply: ExactDecimal | None = None
    total_supply: ExactDecimal | None = None
    max_supply: ExactDecimal | None = None
    country: str | None = None
    year_established: int | None = None
    trust_score: ExactDecimal | None = None
    volume_24h: ExactDecimal | None = None
    network: str | None = None
    dex: str | None = None
    contract_address: str | None = None
    base_asset_id: str | None = None
    quote_asset_id: str | None = None
    attributes: dict[str, JsonValue] = Field(default_factory=dict)

    @property
    def key(self) -> bytes:
        return self.entity_id.encode()


class CandleEvent(Event):
    """An event-time OHLCV candle built from trades. ``event_time`` is the candle's open time.

    A late trade inside the grace period amends the candle: same ``event_id``, higher
    ``revision``. Topic ``coinstream.candles.v1``, keyed by ``venue:symbol``.
    """

    type: Literal["candle"] = "candle"
    venue: str
    symbol: str
    interval: str = "1m"
    open_time: UtcDatetime
    close_time: UtcDatetime
    open: ExactDecimal
    high: ExactDecimal
    low: ExactDecimal
    close: ExactDecimal
    volume: ExactDecimal
    quote_volume: ExactDecimal
    vwap: ExactDecimal
    trade_count: int = Field(ge=0)
    final: bool = Field(False, description="True once the watermark passed close + grace")

    @property
    def key(self) -> bytes:
        return f"{self.venue}:{self.symbol}".encode()


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
]


class FeedStatusEvent(Event):
    """Feed health: disconnect windows, sequence gaps, stale streams, rate limits, errors.

    Topic ``coinstream.feed-status.v1``, keyed by ``source[:symbol]``.
    """

    type: Literal["feed_status"] = "feed_status"
    status: FeedStatus
    symbol: str | None = None
    channel: str | None = None
    window_start: UtcDatetime | None = Field(None, description="Start of the gap/outage")
    window_end: UtcDatetime | None = Field(None, description="End of the gap/outage")
    cause: str = ""
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
    service: str
    instance: str
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
    fingerprint: str = Field(description="Stable id of the alert instance (rule + labels)")
    rule_id: str
    rule_type: str
    status: Literal["pending", "firing", "resolved", "notified", "silenced"]
    severity: Severity = "warning"
    subject: str | None = Field(None, description="Symbol, asset or source the alert is about")
    summary: str
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
