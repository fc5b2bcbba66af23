"""The raw envelope: one verbatim source payload with where and when it was received."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from coinstream.schemas import limits
from coinstream.schemas.types import DisplayText, Identifier, SourceName, UtcDatetime

ENVELOPE_VERSION = 1


class RequestMeta(BaseModel):
    """How a REST payload was fetched. Never contains secrets (keys are stripped)."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", json_schema_extra={"additionalProperties": False}
    )

    method: str = "GET"
    url: str = Field(description="URL without query string or credentials")
    params: dict[str, JsonValue] = Field(default_factory=dict, description="Query, no secrets")
    status: int = Field(description="HTTP status code")
    latency_ms: float = Field(ge=0)
    attempt: int = Field(1, ge=1)


class RawEnvelope(BaseModel):
    """A source payload exactly as received, on ``coinstream.raw.<source>.v1``.

    ``payload`` is the verbatim text of the HTTP body or WebSocket frame, so numbers keep every
    digit they had on the wire; parse it with ``json.loads(payload, parse_float=Decimal)``.
    """

    model_config = ConfigDict(
        frozen=True, extra="ignore", json_schema_extra={"additionalProperties": False}
    )

    schema_version: Literal[1] = 1
    envelope_id: Identifier = Field(description="Unique id of this envelope (random)")
    source: SourceName = Field(description="Source name, e.g. binance or coingecko")
    channel: DisplayText = Field(description="REST endpoint or WebSocket channel/stream name")
    received_at: UtcDatetime = Field(description="Receipt time, UTC, microseconds")
    payload: str = Field(description="Verbatim payload text")
    connection_id: DisplayText | None = Field(
        None, description="WebSocket connection that received it"
    )
    request: RequestMeta | None = Field(None, description="REST request metadata")
    replayed: bool = Field(False, description="True when produced by a replay of a recording")
    backfilled: bool = Field(
        False,
        description="True when fetched from the venue's REST trade history to fill a gap in a "
        "live stream (the trades it holds are ordinary trades, with their usual ids); left out "
        "of the JSON when false",
        exclude_if=lambda v: not v,
    )

    @model_validator(mode="after")
    def _received_in_range(self) -> Any:
        if self.received_at < limits.EARLIEST_EVENT_TIME:
            raise ValueError(f"received_at {self.received_at.isoformat()} is before 2009-01-03")
        return self

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()
