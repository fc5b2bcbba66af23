"""Silences (pure): label matchers plus a time range; a matching alert is not notified.

Times are RFC 3339 UTC (``2026-01-01T12:00:00.000000Z``) like every other time Coinstream
writes. Silences stored by earlier versions as epoch seconds are still read.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from coinstream.schemas import UtcDatetime


class Matcher(BaseModel):
    """``name op value``: ``=`` equal, ``!=`` not equal, ``=~`` / ``!~`` regex (full match)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    value: str
    op: Literal["=", "!=", "=~", "!~"] = "="

    @model_validator(mode="after")
    def _regex(self) -> Matcher:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"matcher {self.name!r}: invalid regex: {exc}") from None
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


def at(ts: float) -> datetime:
    """Epoch seconds as a UTC datetime."""
    return datetime.fromtimestamp(ts, UTC)


class Silence(BaseModel):
    """Alerts whose labels match every matcher are silenced from ``starts_at`` to ``ends_at``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    matchers: list[Matcher] = Field(min_length=1)
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    created_by: str = ""
    comment: str = ""

    @field_validator("starts_at", "ends_at", mode="before")
    @classmethod
    def _epoch_seconds(cls, value: Any) -> Any:
        """The form earlier versions stored: epoch seconds."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value <= 0:
                raise ValueError("a time after the epoch is required")
            return at(float(value))
        return value

    @property
    def start(self) -> float:
        return self.starts_at.timestamp()

    @property
    def end(self) -> float:
        return self.ends_at.timestamp()

    def active(self, now: float) -> bool:
        return self.start <= now < self.end

    def matches(self, labels: dict[str, str], now: float) -> bool:
        return self.active(now) and all(m.matches(labels) for m in self.matchers)


def silenced_by(silences: list[Silence], labels: dict[str, str], now: float) -> str | None:
    """The id of the first active silence matching ``labels``, or None."""
    for silence in silences:
        if silence.matches(labels, now):
            return silence.id
    return None
