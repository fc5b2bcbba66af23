"""The hot-path price form writes exactly what PriceEvent writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from coinstream.normalizer.fastprice import FastPrice, event_id
from coinstream.schemas import PriceEvent, deterministic_id


@pytest.mark.parametrize(
    "parts", [("trade", "binance", "BTC-USDT", "12345"), ("quote", "kraken", "ALGO-USD", 7), ("x",)]
)
def test_event_id_equals_schema_deterministic_id(parts: tuple[object, ...]) -> None:
    assert event_id(str(parts[0]), *parts[1:]) == deterministic_id(str(parts[0]), *parts[1:])


@pytest.mark.parametrize(
    ("when", "price"),
    [
        (datetime(2024, 4, 7, 16, 50, tzinfo=UTC), Decimal("1E-12")),
        (datetime(2024, 4, 7, 16, 50, 0, 1, tzinfo=UTC), Decimal("1E+20")),
        (
            datetime(2024, 4, 7, 18, 50, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
            Decimal("-0"),
        ),
        (datetime(2024, 4, 7, 16, 50, 0, 500000, tzinfo=UTC), Decimal("0.35280000")),
    ],
)
def test_fast_json_is_byte_identical_to_pydantic(when: datetime, price: Decimal) -> None:
    fields = dict(
        event_id="e", event_time=when, received_at=when, source="binance", kind="trade",
        symbol="BTC-USDT", base="BTC", quote="USDT", asset_id="bitcoin", native_symbol='BTC"USDT',
        price=price, size=Decimal(2), side="buy", trade_id="1", contributors=("a", "b"),
    )  # fmt: skip
    fast = FastPrice(**fields)  # type: ignore[arg-type]
    assert fast.to_json() == PriceEvent(**fields).to_json()  # type: ignore[arg-type]
    assert fast.to_event() == PriceEvent(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("trade_id", ["123", "agg-15683430", 'x"y\\z', "é1", "a\nb", ""])
def test_odd_trade_ids_are_escaped_like_pydantic(trade_id: str) -> None:
    t = datetime(2024, 4, 7, 16, 50, tzinfo=UTC)
    fields = dict(
        event_id="0d3c-x", event_time=t, received_at=t, source="kraken", kind="trade",
        symbol="BTC-USD", base="BTC", quote="USD", price=Decimal(1), trade_id=trade_id,
    )  # fmt: skip
    assert FastPrice(**fields).to_json() == PriceEvent(**fields).to_json()  # type: ignore[arg-type]
