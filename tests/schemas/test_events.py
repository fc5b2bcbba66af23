"""Canonical events: exact decimals as strings, UTC timestamps, round trips."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pytest
from pydantic import ValidationError

from coinstream.schemas import (
    AlertEvent,
    CandleEvent,
    FeedStatusEvent,
    PriceEvent,
    ServiceHealthEvent,
    decode_event,
    deterministic_id,
)

T0 = datetime(2024, 3, 25, 8, 45, 0, 123456, tzinfo=UTC)


def price(**kw: object) -> PriceEvent:
    base: dict[str, object] = dict(
        event_id=deterministic_id("trade", "binance", "BTC-USDT", 1),
        event_time=T0,
        received_at=T0 + timedelta(milliseconds=3),
        source="binance",
        kind="trade",
        symbol="BTC-USDT",
        base="BTC",
        quote="USDT",
        price=Decimal("67187.33589365"),
        size=Decimal("0.00100000"),
    )
    base.update(kw)
    return PriceEvent.model_validate(base)


def test_decimals_serialize_as_plain_strings() -> None:
    doc = orjson.loads(price(price=Decimal("1E-12"), size=Decimal("1E+20")).to_json())
    assert doc["price"] == "0.000000000001"
    assert doc["size"] == "100000000000000000000"


def test_decimal_round_trip_keeps_every_digit() -> None:
    event = price(price=Decimal("0.000000012345678901234567890"))
    again = decode_event(event.to_json())
    assert isinstance(again, PriceEvent)
    assert again.price == Decimal("0.000000012345678901234567890")
    assert again == event


def test_floats_are_rejected() -> None:
    with pytest.raises(ValidationError, match="floats are not accepted"):
        price(price=0.1)


def test_non_finite_decimals_are_rejected() -> None:
    with pytest.raises(ValidationError, match="finite"):
        price(price="NaN")


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValidationError, match="naive"):
        price(event_time=datetime(2024, 1, 1))


def test_times_are_normalised_to_utc_with_microseconds() -> None:
    cet = timezone(timedelta(hours=1))
    event = price(event_time=datetime(2024, 1, 1, 1, 0, 0, 5, tzinfo=cet))
    doc = orjson.loads(event.to_json())
    assert doc["event_time"] == "2024-01-01T00:00:00.000005Z"
    assert event.event_time.tzinfo == UTC


def test_decode_event_dispatches_on_type() -> None:
    candle = CandleEvent(
        event_id=deterministic_id("candle", "binance", "BTC-USDT", "1m", T0),
        event_time=T0,
        received_at=T0,
        source="binance",
        venue="binance",
        symbol="BTC-USDT",
        open_time=T0,
        close_time=T0 + timedelta(minutes=1),
        open=Decimal(1),
        high=Decimal(2),
        low=Decimal(1),
        close=Decimal(2),
        volume=Decimal(3),
        quote_volume=Decimal(5),
        vwap=Decimal("1.66"),
        trade_count=2,
        revision=1,
    )
    status = FeedStatusEvent(
        event_id="x",
        event_time=T0,
        received_at=T0,
        source="coinbase",
        status="gap",
        symbol="BTC-USD",
        cause="sequence 5 -> 9",
    )
    health = ServiceHealthEvent(
        event_id="y",
        event_time=T0,
        received_at=T0,
        source="ingest-ws",
        service="ingest-ws",
        instance="a",
        status="ready",
    )
    alert = AlertEvent(
        event_id="z",
        event_time=T0,
        received_at=T0,
        source="alerts",
        fingerprint="f",
        rule_id="r",
        rule_type="price_threshold",
        status="firing",
        summary="BTC above 70000",
    )
    for event in (candle, status, health, alert):
        assert decode_event(event.to_json()) == event


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    doc = orjson.loads(price().to_json())
    doc["added_in_a_later_minor_version"] = 1
    assert decode_event(orjson.dumps(doc)) == price()


def test_deterministic_id_is_stable_and_distinct() -> None:
    a = deterministic_id("trade", "binance", "BTC-USDT", 12345)
    assert a == deterministic_id("trade", "binance", "BTC-USDT", 12345)
    assert a != deterministic_id("trade", "binance", "BTC-USDT", 12346)
    assert a != deterministic_id("trade", "coinbase", "BTC-USDT", 12345)
    assert len(a) == 36
