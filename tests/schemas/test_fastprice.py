"""The hot-path price form writes exactly what PriceEvent writes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from coinstream.schemas import PriceEvent, deterministic_id
from coinstream.schemas.fastprice import FastPrice, event_id


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
            Decimal("0.1"),
        ),
        (datetime(2024, 4, 7, 16, 50, 0, 500000, tzinfo=UTC), Decimal("0.35280000")),
    ],
)
def test_fast_json_is_byte_identical_to_pydantic(when: datetime, price: Decimal) -> None:
    fields = dict(
        event_id="e", event_time=when, received_at=when, source="binance", kind="trade",
        symbol="BTC-USDT", base="BTC", quote="USDT", asset_id="bitcoin", native_symbol='BTC"USDT',
        price=price, size=Decimal("-0"), side="buy", trade_id="1", contributors=("a", "b"),
    )  # fmt: skip
    fast = FastPrice(**fields)  # type: ignore[arg-type]
    assert fast.to_json() == PriceEvent(**fields).to_json()  # type: ignore[arg-type]
    assert fast.to_event() == PriceEvent(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("native", ["BTCUSD", 'x"y\\z', "é1", "比特币/USD", "a/b c"])
def test_odd_native_symbols_are_escaped_like_pydantic(native: str) -> None:
    t = datetime(2024, 4, 7, 16, 50, tzinfo=UTC)
    fields = dict(
        event_id="0d3c-x", event_time=t, received_at=t, source="kraken", kind="trade",
        symbol="BTC-USD", base="BTC", quote="USD", price=Decimal(1), trade_id="agg-1",
        native_symbol=native,
    )  # fmt: skip
    fast = FastPrice(**fields)  # type: ignore[arg-type]
    fast.check()
    assert fast.to_json() == PriceEvent(**fields).to_json()  # type: ignore[arg-type]


_BASE = dict(
    event_id="0d3c-x", event_time=datetime(2024, 4, 7, 16, 50, tzinfo=UTC),
    received_at=datetime(2024, 4, 7, 16, 50, tzinfo=UTC), source="kraken", kind="trade",
    symbol="BTC-USD", base="BTC", quote="USD", price=Decimal(1), trade_id="1",
)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"trade_id": 'x"y\\z'}, "trade_id"),
        ({"trade_id": "a\nb"}, "trade_id"),
        ({"trade_id": ""}, "trade_id"),
        ({"price": Decimal("-1")}, "positive"),
        ({"price": Decimal("0")}, "positive"),
        ({"price": Decimal("1e400000")}, "too large"),
        ({"price": Decimal("1e-400000")}, "digits after the decimal point"),
        ({"size": Decimal("1e308")}, "too large"),
        ({"size": Decimal("-0.5")}, "negative"),
        ({"symbol": "BTC\u202e-USD", "base": "BTC\u202e"}, "U+202E"),
        ({"symbol": "\u0412\u0422\u0421-USD", "base": "\u0412\u0422\u0421"}, "U+0412 CYRILLIC"),
        ({"symbol": "\uff22\uff34\uff23-USD", "base": "\uff22\uff34\uff23"}, "FULLWIDTH"),
        ({"symbol": "BTC-USDT"}, "does not match"),
        ({"event_time": datetime(1969, 12, 31, tzinfo=UTC)}, "before 2009"),
        ({"event_time": datetime(5138, 1, 1, tzinfo=UTC)}, "years after received_at"),
        ({"native_symbol": "BTC\x00USD"}, "U+0000"),
    ],
)
def test_fast_check_refuses_what_the_model_refuses(change: dict[str, object], reason: str) -> None:
    """The hot path and the model apply one contract, with the same readable reason."""
    fields = {**_BASE, **change}
    with pytest.raises(ValueError, match=re.escape(reason)):
        FastPrice(**fields).check()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=re.escape(reason)):
        PriceEvent(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("market", "asset_id", "key"),
    [
        (None, "bitcoin", b"BTC-USD"),
        ("spot", "bitcoin", b"BTC-USD"),
        ("perpetual", "bitcoin", b"BTC-USD|perpetual"),
        ("future", None, b"BTC-USD|future"),
        (None, "coingecko:uniswap-2", b"BTC-USD|coingecko:uniswap-2"),
        ("perpetual", "cmc:7083", b"BTC-USD|perpetual|cmc:7083"),
    ],
)
def test_market_and_key_match_the_model(
    market: str | None, asset_id: str | None, key: bytes
) -> None:
    """Derivatives and assets the registry lacks get their own key; the wire and the key are
    the model's."""
    fields = {**_BASE, "market": market, "asset_id": asset_id}
    fast = FastPrice(**fields)  # type: ignore[arg-type]
    fast.check()
    model = PriceEvent(**fields)  # type: ignore[arg-type]
    assert fast.to_json() == model.to_json()
    assert fast.key == model.key == key


def test_unknown_market_is_refused() -> None:
    with pytest.raises(ValueError, match="market"):
        FastPrice(**{**_BASE, "market": "options"}).check()  # type: ignore[arg-type]


def test_every_model_field_is_written_like_the_model() -> None:
    """The writer takes its fields from the model: a FastPrice with every field the model has
    (sample from the reader's suite) writes the model's bytes and checks like the model."""
    from tests.schemas.test_fastcodec import EVERY_FIELD

    fast = FastPrice(**EVERY_FIELD)
    model = PriceEvent.model_validate(EVERY_FIELD)
    assert fast.to_json() == model.to_json()
    assert fast.key == model.key
    fast.check()
    broken = FastPrice(**{**EVERY_FIELD, "tx_hash": "has space"})
    with pytest.raises(ValueError, match="tx_hash"):
        broken.check()


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(TypeError, match="not PriceEvent fields"):
        FastPrice(**{**_BASE, "colour": "red"})  # type: ignore[arg-type]
