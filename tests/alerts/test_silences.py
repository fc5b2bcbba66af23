"""Silences: matchers and time ranges."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from coinstream.alerts.silences import Matcher, Silence, silenced_by

LABELS = {"alertname": "btc-above-68k", "symbol": "BTC-USDT", "severity": "critical"}


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        (Matcher(name="symbol", value="BTC-USDT"), True),
        (Matcher(name="symbol", value="ETH-USDT"), False),
        (Matcher(name="symbol", value="ETH-USDT", op="!="), True),
        (Matcher(name="symbol", value="BTC-.*", op="=~"), True),
        (Matcher(name="symbol", value="BTC", op="=~"), False),  # full match only
        (Matcher(name="severity", value="info|warning", op="!~"), True),
        (Matcher(name="team", value=""), True),  # a missing label is empty
    ],
)
def test_matchers(matcher: Matcher, expected: bool) -> None:
    assert matcher.matches(LABELS) is expected


def test_silence_applies_only_between_start_and_end() -> None:
    s = Silence(matchers=[Matcher(name="symbol", value="BTC-USDT")], starts_at=100, ends_at=200)
    assert silenced_by([s], LABELS, 99) is None
    assert silenced_by([s], LABELS, 150) == s.id
    assert silenced_by([s], LABELS, 200) is None


def test_silence_times_are_rfc3339_and_the_old_epoch_form_still_loads() -> None:
    """Written as RFC 3339 UTC like every other time; silences stored as epoch seconds by an
    earlier version are read as the same instants."""
    s = Silence(
        matchers=[Matcher(name="symbol", value="BTC-USDT")],
        starts_at="2026-01-01T12:00:00Z",  # type: ignore[arg-type]
        ends_at="2026-01-01T14:00:00+01:00",  # type: ignore[arg-type]
    )
    data = json.loads(s.model_dump_json())
    assert data["starts_at"] == "2026-01-01T12:00:00.000000Z"
    assert data["ends_at"] == "2026-01-01T13:00:00.000000Z"
    old = '{"id": "x", "matchers": [{"name": "a", "value": "b"}], "starts_at": 1767268800.0,'
    old += ' "ends_at": 1767272400}'
    loaded = Silence.model_validate_json(old)
    assert loaded.starts_at == s.starts_at and loaded.ends_at == s.ends_at
    assert loaded.active(s.start + 1) and not loaded.active(s.end)


def test_silence_needs_matchers_and_valid_regex() -> None:
    with pytest.raises(ValidationError):
        Silence(matchers=[], starts_at=1, ends_at=10)
    with pytest.raises(ValidationError, match="invalid regex"):
        Matcher(name="x", value="(", op="=~")
