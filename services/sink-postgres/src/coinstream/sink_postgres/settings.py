"""Settings for sink-postgres: ``SINK_POSTGRES_*`` (database URL falls back to ``DATABASE_URL``)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from coinstream.runtime import ServiceSettings


class SinkPostgresSettings(ServiceSettings):
    """Everything sink-postgres reads from the environment (built once in ``__main__``)."""

    model_config = SettingsConfigDict(
        env_prefix="SINK_POSTGRES_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
    )

    service_name: str = "sink-postgres"
    database_url: SecretStr = Field(
        SecretStr("postgresql://postgres@127.0.0.1:5432/coinstream"),
        validation_alias=AliasChoices("SINK_POSTGRES_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="PostgreSQL DSN; may hold a password, so it is never logged",
    )
    group_id: str = "coinstream-sink-postgres"
    topics: tuple[
        Literal["prices", "candles", "sentiment", "metadata", "feed_status", "alerts"], ...
    ] = (
        "prices",
        "candles",
        "sentiment",
        "metadata",
        "feed_status",
        "alerts",
    )
    batch_max_rows: int = Field(5_000, gt=0, description="Flush a batch at this many records")
    batch_max_wait_ms: int = Field(
        500, gt=0, description="Flush a non-empty batch after this, even if the writer is busy"
    )
    flush_when_idle: bool = Field(
        True,
        description="Hand the open batch to the writer as soon as the writer is idle and the "
        "consumer has caught up (low latency at moderate rates; under load batches still fill "
        "up to batch_max_rows while the writer works). False: only full or old batches go",
    )
    max_pending_batches: int = Field(
        2, gt=0, description="Batches waiting for the database before consumption pauses"
    )
    poll_max_records: int = Field(5_000, gt=0)
    migrate_on_start: bool = True
    connect_timeout_s: float = Field(5.0, gt=0)
    statement_timeout_ms: int = Field(60_000, ge=0, description="0 = no limit")
    retry_initial_s: float = Field(0.2, gt=0, description="First database retry delay")
    retry_max_s: float = Field(10.0, gt=0, description="Cap of the database retry delay")
    revoke_flush_timeout_s: float = Field(
        20.0, gt=0, description="How long a rebalance waits for in-flight batches to commit"
    )
    timescale: Literal["auto", "off"] = Field(
        "auto", description="auto: make time-series tables hypertables if TimescaleDB exists"
    )
    timescale_chunk_interval: str = "1 day"
    timescale_compress_after: str | None = "7 days"
    timescale_retention: str | None = Field(None, description="e.g. '365 days'; None = keep all")
