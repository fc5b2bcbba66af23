"""The fast envelope encoder writes exactly what RawEnvelope.to_json() writes."""

from __future__ import annotations

import re

from coinstream.ingest_ws.envelope import Clock, EnvelopeIds, encode
from coinstream.schemas import RawEnvelope, decode_envelope


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
