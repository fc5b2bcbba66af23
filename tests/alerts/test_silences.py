"""Silences: matchers and time ranges."""

from __future__ import annotations

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


def test_silence_needs_matchers_and_valid_regex() -> None:
    with pytest.raises(ValidationError):
        Silence(matchers=[], starts_at=0, ends_at=10)
    with pytest.raises(ValidationError, match="invalid regex"):
        Matcher(name="x", value="(", op="=~")
