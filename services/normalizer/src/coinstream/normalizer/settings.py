"""Normalizer settings (env prefix ``NORMALIZER_``, nested delimiter ``__``)."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import SettingsConfigDict

from coinstream.runtime import ServiceSettings


class CandleSettings(BaseModel):
    """Event-time candles built from trades."""

    enabled: bool = True
    interval_s: int = Field(60, gt=0, description="Candle length in seconds")
    grace_s: float = Field(10.0, ge=0, description="Late trades within this are amendments")
    from_agg_trades: bool = Field(False, description="Also count Binance aggTrades")
    revise_within_s: float = Field(
        3600.0,
        ge=0,
        description="A final candle may still be revised (a trade backfilled after a gap) "
        "this long after its close, while the process that built it runs; 0 disables",
    )


class ConsolidatedSettings(BaseModel):
    """Consolidated price per asset across venues."""

    enabled: bool = True
    interval_s: float = Field(10.0, gt=0, description="Emit one price per asset per interval")
    window_s: float = Field(60.0, gt=0, description="Trailing window of trades")
    stale_after_s: float = Field(30.0, gt=0, description="Exclude venues quiet for longer")
    outlier_pct: Decimal = Field(Decimal(5), gt=0, description="Exclude venues this far off")
    grace_s: float = Field(
        2.0,
        ge=0,
        description="Compute an interval once trades are this far past its end, so venues "
        "arriving a little later through other partitions still count",
    )
    quote_aliases: dict[str, str] = Field(
        default_factory=lambda: {"USDT": "USD", "USDC": "USD"},
        description="Quote codes consolidated together",
    )

    @model_validator(mode="after")
    def _whole_intervals(self) -> ConsolidatedSettings:
        if self.window_s < self.interval_s or (self.window_s / self.interval_s) % 1:
            raise ValueError("consolidated.window_s must be a whole multiple of interval_s")
        return self


class FaustSettings(BaseModel):
    """Options of the faust-streaming engine (``NORMALIZER_ENGINE=faust``)."""

    producer_linger_s: float = Field(0.01, ge=0)
    log_level: Literal["info", "warning", "error"] = "info"
    broker_commit_interval_s: float = Field(1.0, gt=0)
    data_dir: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "coinstream-normalizer-faust",
        description="faust data directory (no tables are stored there)",
    )


class NormalizerSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="NORMALIZER_", env_nested_delimiter="__", extra="ignore"
    )

    service_name: str = "normalizer"
    role: Literal["normalize", "consolidate"] = Field(
        "normalize",
        description="normalize: raw topics -> canonical events and candles (scales with the "
        "raw topics' partitions); consolidate: the cross-venue consolidated price from the "
        "internal trades-by-asset topic (scales with its partitions). Run both.",
    )
    engine: Literal["aiokafka", "faust"] = "aiokafka"
    group_id: str = Field(
        "coinstream-normalizer",
        description="Consumer group (the consolidate role defaults to coinstream-consolidator)",
    )
    sources: tuple[str, ...] | None = Field(
        None, description="Raw topics to consume (default: every registered parser's source)"
    )
    batch_max_records: int = Field(5000, gt=0, description="Records per consume batch")
    poll_timeout_ms: int = Field(200, gt=0)
    dedup_window: int = Field(100_000, ge=0, description="Event ids remembered for dedup")
    max_future_skew_s: float = Field(
        300.0,
        ge=0,
        description="How far an event_time (or an envelope's received_at) may be ahead of the "
        "receipt time (or this clock); later ones are dead-lettered",
    )
    watermark_lead_s: float = Field(
        2.0,
        ge=0,
        description="How far past its receipt time one trade may move a candle watermark or "
        "a consolidation clock",
    )
    state_group_suffix: str = Field(
        ".state",
        description="Suffix of the companion consumer group that records, per partition, the "
        "oldest record still feeding open candles (state rebuilt from there after a restart)",
    )
    registry_file: Path | None = Field(None, description="JSON file extending the registry")
    candles: CandleSettings = Field(default_factory=CandleSettings)
    consolidated: ConsolidatedSettings = Field(default_factory=ConsolidatedSettings)
    faust: FaustSettings = Field(default_factory=FaustSettings)

    @model_validator(mode="after")
    def _role_defaults(self) -> NormalizerSettings:
        if self.role == "consolidate":
            if "group_id" not in self.model_fields_set:
                self.group_id = "coinstream-consolidator"
            if "service_name" not in self.model_fields_set:
                self.service_name = "consolidator"
            if self.engine == "faust":
                raise ValueError(
                    "NORMALIZER_ENGINE=faust runs the normalize role only; the consolidate "
                    "role uses the aiokafka engine"
                )
        return self
