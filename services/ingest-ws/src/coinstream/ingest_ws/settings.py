"""The one settings class of ingest-ws (env prefix ``INGEST_WS_``, nested delimiter ``__``).

Per venue: ``INGEST_WS_BINANCE__URL``, ``INGEST_WS_BINANCE__SYMBOLS='["BTC-USDT"]'``,
``INGEST_WS_BINANCE__CHANNELS='["trade","bookTicker"]'``, ``INGEST_WS_COINBASE__ENABLED=false``...
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, PrivateAttr
from pydantic_settings import BaseSettings, SettingsConfigDict

from coinstream.runtime import ServiceSettings


class VenueSettings(BaseModel):
    """Connection, limits and liveness settings of one venue (defaults differ per venue)."""

    enabled: bool = True
    url: str = ""
    symbols: list[str] = Field(default_factory=list, description="Canonical, e.g. BTC-USDT")
    channels: list[str] = Field(default_factory=list)
    extra_symbols: list[str] = Field(
        default_factory=list,
        description="Canonical symbols the venue lists that are missing from the built-in catalogue",
    )
    # venue limits
    max_streams_per_connection: int = Field(
        200, gt=0, description="Streams (symbol x channel) per connection; more shard out"
    )
    control_msgs_per_s: float = Field(
        4.0, gt=0, description="Subscribe/ping messages per second we send (per venue)"
    )
    control_burst: int = Field(4, gt=0)
    connect_attempts: int = Field(
        20, gt=0, description="Connection attempts allowed per connect_window_s (per venue)"
    )
    connect_window_s: float = Field(60.0, gt=0)
    subscribe_deadline_s: float = Field(5.0, gt=0, description="Subscribe within this after open")
    # liveness
    open_timeout_s: float = Field(10.0, gt=0)
    ping_interval_s: float | None = Field(20.0, gt=0, description="WebSocket ping period")
    ping_timeout_s: float | None = Field(20.0, gt=0, description="Close if no pong within")
    app_ping_interval_s: float | None = Field(
        None, gt=0, description="Application-level ping period (Kraken method=ping)"
    )
    max_connection_age_s: float | None = Field(
        None, gt=0, description="Rotate (make-before-break) connections older than this"
    )
    handover_timeout_s: float = Field(10.0, gt=0, description="Wait for the new connection")
    idle_timeout_s: dict[str, float] = Field(
        default_factory=dict, description="Fixed stale threshold per channel (else learned)"
    )
    stale_min_s: float = Field(5.0, gt=0, description="Learned stale threshold lower bound")
    stale_max_s: float = Field(300.0, gt=0, description="Learned stale threshold upper bound")
    stale_factor: float = Field(10.0, gt=1, description="Threshold = factor x mean interval")
    first_message_timeout_s: float = Field(
        30.0, gt=0, description="Stale if nothing since subscribe"
    )
    silence_min_s: float = Field(5.0, gt=0, description="Connection dead after >= this silence")
    silence_max_s: float = Field(60.0, gt=0, description="Connection dead after <= this silence")
    # reconnect backoff
    backoff_initial_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    backoff_reset_after_s: float = Field(60.0, gt=0, description="Healthy time that resets it")
    # gaps
    gap_grace_s: float = Field(1.0, ge=0, description="Wait for late messages before a gap")
    drop_duplicates: bool = Field(True, description="Drop frames whose sequence ids were seen")
    # backfill from the REST trade history
    rest_url: str = Field("", description="Base URL of the venue's REST API (trade history)")
    backfill: bool = Field(True, description="Fetch the trades of detected gaps over REST")
    backfill_calls: int = Field(10, gt=0, description="History requests per backfill window")
    backfill_window_s: float = Field(30.0, gt=0, description="Window of the request budget")
    backfill_max_trades: int = Field(
        100_000, gt=0, description="Trades one gap may fetch; beyond, the rest is unrecoverable"
    )
    backfill_retries: int = Field(5, ge=0, description="Retries of a failing history request")
    backfill_timeout_s: float = Field(
        900.0, gt=0, description="Give up on a gap (unrecoverable) after this long"
    )
    default_retry_after_s: float = Field(10.0, gt=0, description="Wait after a bare 429")


class BinanceSettings(VenueSettings):
    """Binance spot combined streams: 1024 streams and 5 msgs/s per connection, 300
    connection attempts per 5 min per IP, disconnect at 24 h."""

    url: str = "wss://stream.binance.com:9443"
    symbols: list[str] = Field(default_factory=lambda: ["BTC-USDT", "ETH-USDT"])
    channels: list[str] = Field(default_factory=lambda: ["trade", "bookTicker"])
    max_streams_per_connection: int = Field(1024, gt=0, le=1024)
    control_msgs_per_s: float = Field(4.0, gt=0, le=5.0)
    connect_attempts: int = Field(300, gt=0)
    connect_window_s: float = Field(300.0, gt=0)
    max_connection_age_s: float | None = Field(23.5 * 3600, gt=0)
    url_max_streams: int = Field(
        100, gt=0, description="Streams put in the connect URL; the rest via SUBSCRIBE"
    )
    rest_url: str = "https://api.binance.com"
    # historicalTrades weighs 25 of the 6,000 request weight per minute and IP: a quarter of it
    backfill_calls: int = Field(60, gt=0)
    backfill_window_s: float = Field(60.0, gt=0)


class CoinbaseSettings(VenueSettings):
    """Coinbase Advanced Trade: 8 connections/s and 8 unauthenticated messages/s per IP."""

    url: str = "wss://advanced-trade-ws.coinbase.com"
    symbols: list[str] = Field(default_factory=lambda: ["BTC-USD", "ETH-USD"])
    channels: list[str] = Field(default_factory=lambda: ["ticker", "market_trades", "heartbeats"])
    max_streams_per_connection: int = Field(300, gt=0)
    control_msgs_per_s: float = Field(6.0, gt=0, le=8.0)
    control_burst: int = Field(6, gt=0)
    connect_attempts: int = Field(6, gt=0)
    connect_window_s: float = Field(1.0, gt=0)
    rest_url: str = "https://api.coinbase.com"
    # public REST endpoints: 10 requests per second and IP
    backfill_calls: int = Field(5, gt=0)
    backfill_window_s: float = Field(1.0, gt=0)


class KrakenSettings(VenueSettings):
    """Kraken v2: public limits are undocumented, so the defaults are conservative."""

    url: str = "wss://ws.kraken.com/v2"
    symbols: list[str] = Field(default_factory=lambda: ["BTC-USD", "ETH-USD"])
    channels: list[str] = Field(default_factory=lambda: ["ticker", "trade"])
    max_streams_per_connection: int = Field(200, gt=0)
    control_msgs_per_s: float = Field(2.0, gt=0)
    control_burst: int = Field(2, gt=0)
    connect_attempts: int = Field(15, gt=0)
    connect_window_s: float = Field(60.0, gt=0)
    app_ping_interval_s: float | None = Field(30.0, gt=0)
    rest_url: str = "https://api.kraken.com"
    # public REST: a counter of 15 that decays by one every 3 s, so about one call per 3 s
    backfill_calls: int = Field(10, gt=0)
    backfill_window_s: float = Field(30.0, gt=0)


class IngestWsSettings(ServiceSettings):
    """ingest-ws settings: one ``VenueSettings`` per venue plus publishing limits."""

    model_config = SettingsConfigDict(
        env_prefix="INGEST_WS_", env_nested_delimiter="__", extra="ignore"
    )

    service_name: str = "ingest-ws"
    binance: BinanceSettings = Field(default_factory=BinanceSettings)
    coinbase: CoinbaseSettings = Field(default_factory=CoinbaseSettings)
    kraken: KrakenSettings = Field(default_factory=KrakenSettings)
    buffer_max_messages: int = Field(
        50_000, gt=0, description="Envelopes buffered for Kafka; beyond it new ones are dropped"
    )
    publish_batch_max: int = Field(
        20_000, gt=0, description="Envelopes taken from the buffer per producer round"
    )
    watchdog_interval_s: float = Field(0.5, gt=0, description="Stale/gap check period")
    checkpoints: bool = Field(
        True, description="Keep where each stream left off in Kafka, to detect gaps across restarts"
    )
    checkpoint_interval_s: float = Field(2.0, gt=0, description="How often checkpoints are written")

    _plugin_venues: dict[str, VenueSettings] = PrivateAttr(default_factory=dict)

    def venues(self) -> dict[str, VenueSettings]:
        """Settings of every registered venue (entry-point group ``coinstream.ws_venues``), by
        name: the fields above for the built-in venues; for a venue added by a plugin, its
        protocol's ``settings_class`` read from ``INGEST_WS_<VENUE>__*`` (once)."""
        from coinstream.ingest_ws.venues import protocols  # venues import this module

        out: dict[str, VenueSettings] = {}
        for name, cls in protocols().items():
            own = getattr(self, name, None)
            if isinstance(own, VenueSettings):
                out[name] = own
                continue
            found = self._plugin_venues.get(name)
            if found is None:
                found = self._plugin_venues[name] = venue_settings_from_env(
                    name, cls.settings_class
                )
            out[name] = found
        return out


def venue_settings_from_env(venue: str, cls: type[VenueSettings]) -> VenueSettings:
    """``cls`` filled from ``INGEST_WS_<VENUE>__<NAME>`` variables (lists/maps as JSON)."""
    prefix = f"INGEST_WS_{venue.upper().replace('-', '_')}__"
    config = SettingsConfigDict(env_prefix=prefix, env_nested_delimiter="__", extra="ignore")
    from_env: Any = type(f"{cls.__name__}FromEnv", (BaseSettings, cls), {"model_config": config})
    return cls.model_validate(from_env().model_dump())
