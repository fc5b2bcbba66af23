"""The boundary contract: each limit refuses what no market produces, with a readable reason,
and the exported JSON Schema states the same limits."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import jsonschema
import pytest

from coinstream.schemas import PriceEvent, json_schemas, limits

T = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    ["1", "0.000000000000000001", "1" + "0" * 77, "0." + "0" * 77 + "1", "-12.5", "0"],
)
def test_decimals_within_the_digit_limits_are_accepted(value: str) -> None:
    assert limits.check_decimal(Decimal(value)) == Decimal(value)
    assert limits.plain_decimal_ok(value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1e400000", "too large: about 1e400000"),
        ("1e-400000", "400000 digits after the decimal point"),
        ("9" * 20_000, "too large: about 1e19999"),
        ("1e308", "too large"),
        ("1" + "0" * 78, "more than 78 digits before"),
        ("0." + "0" * 78 + "1", "79 digits after"),
        ("NaN", "finite"),
        ("-Infinity", "finite"),
    ],
)
def test_decimals_beyond_the_limits_are_refused_with_the_reason(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        limits.check_decimal(Decimal(value), "price")
    assert not limits.plain_decimal_ok(value)


def test_signs() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        limits.check_positive(Decimal(0), "price")
    with pytest.raises(ValueError, match="must not be negative"):
        limits.check_non_negative(Decimal("-0.1"), "size")
    assert limits.check_non_negative(Decimal(0)) == 0
    assert not limits.plain_decimal_ok("0.000", positive=True)
    assert limits.plain_decimal_ok("0.001", positive=True)
    assert not limits.plain_decimal_ok("-1", non_negative=True)


@pytest.mark.parametrize(
    "symbol", ["BTC-USDT", "USDC.e-WETH", "allBTC-USD", "1000PEPE-USDT", "$WIF-USDC", "USD+-DAI"]
)
def test_canonical_symbols_that_real_markets_use(symbol: str) -> None:
    assert limits.check_symbol(symbol) == symbol


@pytest.mark.parametrize(
    ("symbol", "reason"),
    [
        ("BTC\u202e-USDT", "U+202E RIGHT-TO-LEFT OVERRIDE (an invisible format character)"),
        ("\u0412TC-USDT", "U+0412 CYRILLIC CAPITAL LETTER VE"),
        ("\uff22TC-USDT", "U+FF22 FULLWIDTH LATIN CAPITAL LETTER B"),
        ("\U0001f680-USDT", "U+1F680 ROCKET"),
        ("BTC USDT", "contains U+0020 SPACE"),
        ("BTCUSDT", "must be BASE-QUOTE"),
        ("A" * 800 + "-USDT", "longer than 32 characters"),
        ("BTC-", "quote is empty"),
        ("BTC\x00-USDT", "U+0000 (a control character)"),
    ],
)
def test_nonsense_symbols_are_refused_naming_the_character(symbol: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        limits.check_symbol(symbol)


def test_native_symbols_may_be_any_script_but_not_invisible() -> None:
    assert limits.check_display("比特币/USD") == "比特币/USD"
    with pytest.raises(ValueError, match=re.escape("U+200B ZERO WIDTH SPACE")):
        limits.check_display("BTC\u200bUSD", "native_symbol")


def test_event_time_bounds() -> None:
    limits.check_event_time(T, T)
    limits.check_event_time(T + timedelta(seconds=299), T)
    with pytest.raises(ValueError, match="before 2009-01-03"):
        limits.check_event_time(datetime(1969, 12, 31, tzinfo=UTC), T)
    with pytest.raises(ValueError, match=re.escape("73.8 years after received_at")):
        limits.check_event_time(datetime(2100, 1, 1, tzinfo=UTC), T)
    with pytest.raises(ValueError, match="at most 10 s of clock skew"):
        limits.check_event_time(T + timedelta(seconds=11), T, timedelta(seconds=10))


def test_configured_skew_applies_to_the_models() -> None:
    fields = dict(
        event_id="e", event_time=T + timedelta(seconds=60), received_at=T, source="binance",
        kind="trade", symbol="BTC-USDT", base="BTC", quote="USDT", price=Decimal(1),
    )  # fmt: skip
    PriceEvent(**fields)  # type: ignore[arg-type]
    limits.configure(max_future_skew=timedelta(seconds=30))
    try:
        with pytest.raises(ValueError, match="at most 30 s of clock skew"):
            PriceEvent(**fields)  # type: ignore[arg-type]
    finally:
        limits.configure(max_future_skew=limits.DEFAULT_MAX_FUTURE_SKEW)


def _wire(**changes: object) -> dict[str, object]:
    doc = json.loads(
        PriceEvent(
            event_id="e1",
            event_time=T,
            received_at=T,
            source="binance",
            kind="trade",
            symbol="BTC-USDT",
            base="BTC",
            quote="USDT",
            price=Decimal("67000.5"),
            size=Decimal("0.01"),
            trade_id="123",
        ).to_json()
    )
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    "change",
    [
        {"price": "1" + "0" * 80},
        {"price": "0"},
        {"price": "-1"},
        {"size": "-0.5"},
        {"symbol": "BTC\u202e-USDT"},
        {"base": "\u0412TC"},
        {"trade_id": "a b"},
        {"source": "Binance!"},
    ],
)
def test_exported_json_schema_states_the_same_limits(change: dict[str, object]) -> None:
    """A third-party validator refuses what the models refuse (and accepts the wire form)."""
    schema = json_schemas()["PriceEvent"]
    jsonschema.validate(_wire(), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_wire(**change), schema)
    with pytest.raises(ValueError):
        PriceEvent.model_validate(_wire(**change))
