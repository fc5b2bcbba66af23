"""The exported JSON Schema is as strict as the models, checked with a third-party validator
(``jsonschema``, Draft 2020-12 with format checking): every valid event passes, and the
forms the models refuse fail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from coinstream.schemas import (
    AlertEvent,
    AssetMetadataEvent,
    CandleEvent,
    DeadLetter,
    FeedStatusEvent,
    PriceEvent,
    RawEnvelope,
    SentimentEvent,
    ServiceHealthEvent,
    json_schemas,
)
from coinstream.schemas.dead_letters import bounded_value

T0 = datetime(2026, 12, 6, 12, 0, 0, 250_000, tzinfo=UTC)
SCHEMAS = json_schemas()


def validator(name: str) -> Draft202012Validator:
    schema = SCHEMAS[name]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def common(**kw: Any) -> dict[str, Any]:
    return {"event_id": "e-1", "event_time": T0, "received_at": T0, "source": "binance", **kw}


VALID = [
    PriceEvent(
        **common(kind="trade", symbol="BTC-USDT", base="BTC", quote="USDT", asset_id="bitcoin"),
        price=Decimal("97000.12"),
        size=Decimal("0.001"),
        side="buy",
        trade_id="1",
    ),
    PriceEvent(
        **common(kind="quote", symbol="BTC-USDT", base="BTC", quote="USDT", market="perpetual"),
        bid=Decimal("1E-12"),
        bid_size=Decimal(0),
        ask=Decimal("2"),
        ask_size=Decimal("3"),
    ),
    PriceEvent(
        **common(kind="ticker", symbol="UNI-USD", base="UNI", quote="USD", source="coingecko"),
        asset_id="coingecko:uniswap-2",
        price=Decimal("7.5"),
        change_24h_pct=Decimal("-3.25"),
        market_cap=Decimal("1000000"),
    ),
    SentimentEvent(
        **common(source="alternative-me"),
        subject="market",
        metric="fear_greed",
        value=Decimal(25),
        classification="Extreme Fear",
    ),
    AssetMetadataEvent(
        **common(source="coingecko"),
        entity="asset",
        entity_id="asset:bitcoin",
        name="Bitcoin",
        links={"homepage": ("https://bitcoin.org",)},
        attributes={"rank": 1, "tags": ["pow"], "nested": {"a": None}},
        circulating_supply=Decimal("19800000"),
    ),
    CandleEvent(
        **common(),
        venue="binance",
        symbol="BTC-USDT",
        interval="1m",
        open_time=T0,
        close_time=T0 + timedelta(minutes=1),
        open=Decimal(1),
        high=Decimal(2),
        low=Decimal(1),
        close=Decimal(2),
        volume=Decimal(3),
        quote_volume=Decimal(5),
        vwap=Decimal("1.6"),
        trade_count=2,
    ),
    FeedStatusEvent(**common(), status="gap", symbol="BTC-USDT", window_start=T0, window_end=T0),
    ServiceHealthEvent(
        **common(source="normalizer"), service="normalizer", instance="n-1", status="ready"
    ),
    AlertEvent(
        **common(source="alerts"),
        fingerprint="f",
        rule_id="r",
        rule_type="threshold",
        status="firing",
        severity="warning",
        subject="BTC-USDT",
        summary="BTC above 69000",
        starts_at=T0,
    ),
]


@pytest.mark.parametrize("event", VALID, ids=lambda e: type(e).__name__)
def test_every_valid_event_validates(event: Any) -> None:
    doc = json.loads(event.to_json())
    errors = [e.message for e in validator(type(event).__name__).iter_errors(doc)]
    assert errors == []


def test_raw_envelope_validates() -> None:
    env = RawEnvelope(
        envelope_id="x", source="binance", channel="btcusdt@trade", received_at=T0, payload="{}"
    )
    assert list(validator("RawEnvelope").iter_errors(json.loads(env.model_dump_json()))) == []


def trade_doc() -> dict[str, Any]:
    return json.loads(VALID[0].to_json())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", "not-a-number"),
        ("price", "0"),
        ("price", "-1"),
        ("price", 97000.12),
        ("size", "-0.1"),
        ("event_time", "yesterday at noon"),
        ("received_at", "2026-13-45T99:00:00.000000Z"),
        ("symbol", "btc usdt"),
        ("source", "Bin ance"),
        ("kind", "rumour"),
        ("market", "options"),
        ("schema_version", 2),
        ("surprise", "an unknown field"),
    ],
)
def test_invalid_forms_fail_like_the_model(field: str, value: object) -> None:
    doc = trade_doc() | {field: value}
    assert list(validator("PriceEvent").iter_errors(doc)), f"{field}={value!r} validated"
    with pytest.raises(ValueError):  # the model refuses the same document
        PriceEvent.model_validate_json(json.dumps(doc) if field != "surprise" else "{")


@pytest.mark.parametrize(
    ("field", "value"),
    [("price", "1e5"), ("price", "097000"), ("event_time", "2026-12-06T12:00:00+01:00")],
)
def test_non_canonical_wire_forms_fail(field: str, value: str) -> None:
    """The schema describes the wire, which is canonical: plain decimals, UTC with ``Z``
    (the models read these forms and write them canonically)."""
    doc = trade_doc() | {field: value}
    assert list(validator("PriceEvent").iter_errors(doc)), f"{field}={value!r} validated"
    assert field not in json.loads(PriceEvent.model_validate(doc).to_json()) or (
        json.loads(PriceEvent.model_validate(doc).to_json())[field] != value
    )


def test_a_missing_required_field_fails() -> None:
    doc = trade_doc()
    del doc["event_time"]
    assert list(validator("PriceEvent").iter_errors(doc))


def test_dead_letter_headers_and_bounded_value_validate() -> None:
    letter = DeadLetter(
        reason="price: not a number",
        error_class="ParseError",
        origin_topic="coinstream.raw.binance.v1",
        origin_partition=3,
        origin_offset=42,
        service="normalizer",
        original_size=2_000_000,
        original_digest="blake2b-256:" + "ab" * 32,
    )
    headers = {k: v.decode() for k, v in letter.to_headers()} | {"traceparent": "00-x"}
    assert list(validator("DeadLetterHeaders").iter_errors(headers)) == []
    for broken in (
        {k: v for k, v in headers.items() if k != "dlq.reason"},
        headers | {"dlq.origin.offset": "forty-two"},
        {k: v for k, v in headers.items() if k != "dlq.original_digest"},
    ):
        assert list(validator("DeadLetterHeaders").iter_errors(broken))
    value = json.loads(bounded_value(b"x" * 10_000))
    assert list(validator("DeadLetterBoundedValue").iter_errors(value)) == []
    assert list(validator("DeadLetterBoundedValue").iter_errors(value | {"head": 1}))
