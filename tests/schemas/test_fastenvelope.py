"""The raw envelope's fast codec: the writer writes exactly what ``RawEnvelope.to_json()``
writes, and the reader reads every field the model has (fields taken from the model)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from coinstream.schemas import RawEnvelope, RequestMeta, decode_envelope
from coinstream.schemas.fastenvelope import (
    Clock,
    EnvelopeError,
    EnvelopeIds,
    EnvelopeParts,
    _decode_slow,
    encode,
)
from coinstream.schemas.fastenvelope import decode_envelope as fast_decode
from coinstream.schemas.fastprice import utc_text

T = datetime(2024, 4, 7, 16, 50, 0, 123456, tzinfo=UTC)
EVERY_FIELD: dict[str, Any] = {
    "schema_version": 1,
    "envelope_id": "e-1",
    "source": "coinbase",
    "channel": "/api/v3/brokerage/market/products/{id}/ticker",
    "received_at": T,
    "payload": '{"trades":[{"price":"1.5"}]}',
    "connection_id": "c-9",
    "request": RequestMeta(
        url="https://api.coinbase.com/x", params={"limit": 5}, status=200, latency_ms=3
    ),
    "replayed": True,
    "backfilled": True,
}


def test_the_sample_sets_every_model_field() -> None:
    assert set(EVERY_FIELD) == set(RawEnvelope.model_fields)


def test_the_reader_reads_every_field_the_model_has() -> None:
    model = RawEnvelope(**EVERY_FIELD)
    fast = fast_decode(model.to_json())
    for name in RawEnvelope.model_fields:
        value = getattr(model, name)
        expected = value.model_dump(mode="json", exclude_none=True) if name == "request" else value
        assert getattr(fast, name) == expected, name
    assert fast.received_text == "2024-04-07T16:50:00.123456Z"


def test_parts_build_what_encode_and_the_model_write() -> None:
    ids = EnvelopeIds()
    parts = EnvelopeParts("binance", ids)
    counter = ids.reserve(1)
    built = parts.build(
        counter, parts.middle("btcusdt@trade", "2024-04-07T16:50:00.123456Z"), "{}",
        parts.tail("c-1"),
    )  # fmt: skip
    model = RawEnvelope(
        envelope_id=f"{ids.prefix}-{counter:x}",
        source="binance",
        channel="btcusdt@trade",
        received_at=T,
        payload="{}",
        connection_id="c-1",
    )
    assert built == model.to_json()


def test_encoded_envelope_equals_the_schema_models_json() -> None:
    clock = Clock()
    _, received_at = clock.now()
    payload = '{"stream":"btcusdt@trade","data":{"p":"67000.10000000"}}'
    fast = encode("id-1", "binance", "btcusdt@trade", received_at, payload, "conn-1")
    model = RawEnvelope(
        envelope_id="id-1",
        source="binance",
        channel="btcusdt@trade",
        received_at=received_at,
        payload=payload,
        connection_id="conn-1",
    )
    assert fast == model.to_json()  # byte for byte
    assert decode_envelope(fast) == model
    tricky = 'quote " backslash \\ newline \n unicode \u00e9 \u2028'
    assert (
        encode("i", "s", "c", received_at, tricky, None, True)
        == RawEnvelope(
            envelope_id="i",
            source="s",
            channel="c",
            received_at=received_at,
            payload=tricky,
            replayed=True,
        ).to_json()
    )


def test_receipt_time_has_microseconds_and_is_utc() -> None:
    epoch, text = Clock().now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text)
    assert (
        abs(decode_envelope(encode("i", "s", "c", text, "", None)).received_at.timestamp() - epoch)
        < 1e-5
    )


def test_envelope_ids_are_unique() -> None:
    ids = EnvelopeIds()
    other = EnvelopeIds()
    seen = {ids.next() for _ in range(1000)} | {other.next() for _ in range(1000)}
    assert len(seen) == 2000


@pytest.mark.parametrize(
    "received",
    [
        datetime(2024, 4, 7, 16, 50, 0, 123456, tzinfo=UTC),
        datetime(2024, 4, 7, 16, 50, tzinfo=UTC),
        datetime(2024, 4, 7, 18, 50, 0, 5, tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_fast_decode_equals_the_general_decode(received: datetime) -> None:
    value = encode("i", "binance", "btcusdt@trade", received.isoformat(), "{}", None)
    fast, slow = fast_decode(value), _decode_slow(value)
    assert fast == slow
    assert fast.received_text == utc_text(received)


@pytest.mark.parametrize(
    "stamp", ['"2024-04-07T16:50:00.123+02:00"', '"2024-04-07T16:50:00,123456Z"', "1712508600"]
)
def test_times_in_other_forms_take_the_general_path(stamp: str) -> None:
    value = (
        b'{"envelope_id":"e","source":"binance","channel":"c","payload":"{}","received_at":'
        + stamp.encode()
        + b"}"
    )
    try:
        expected: object = _decode_slow(value)
    except EnvelopeError as exc:
        expected = str(exc)
    try:
        got: object = fast_decode(value)
    except EnvelopeError as exc:
        got = str(exc)
    assert got == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "not a raw envelope"),
        (b'{"source":"binance"}', "not a raw envelope"),
        (
            encode("i", "s", "c", "2024-04-07T16:50:00Z", "", None).replace(
                b'"schema_version":1', b'"schema_version":2'
            ),
            "schema_version 2",
        ),
        (
            b'{"envelope_id":"e","source":"s","channel":"c","payload":"","received_at":"2024-04-07T16:50:00"}',
            "no timezone",
        ),
    ],
)
def test_what_is_not_an_envelope_is_refused_with_the_reason(value: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError, match=re.escape(reason)):
        fast_decode(value)
