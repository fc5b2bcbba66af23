"""Silences (pure): label matchers plus a time range; a matching alert is not notified."""

from __future__ import annotations

import re
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


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


class Silence(BaseModel):
    """Alerts whose labels match every matcher are silenced from ``starts_at`` to ``ends_at``
    (epoch seconds)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    matchers: list[Matcher] = Field(min_length=1)
    starts_at: float
    ends_at: float
    created_by: str = ""
    comment: str = ""

    @field_validator("ends_at")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("ends_at must be a time after the epoch")
        return value

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: dict[str, str], now: float) -> bool:
        return self.active(now) and all(m.matches(labels) for m in self.matchers)


def silenced_by(silences: list[Silence], labels: dict[str, str], now: float) -> str | None:
    """The id of the first active silence matching ``labels``, or None."""
    for silence in silences:
        if silence.matches(labels, now):
            return silence.id
    return None
