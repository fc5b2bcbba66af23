"""The fast price reader agrees with the models field by field, and defers when unsure.

The field list comes from ``PriceEvent`` itself: a field added to the model is compared here
(and read by ``fastcodec``) without another change.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from coinstream.schemas import PriceEvent, decode_event, deterministic_id, fastcodec
from coinstream.schemas.fastcodec import price_fields, read_price

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

EVERY_FIELD: dict[str, Any] = {
    "schema_version": 1,
    "event_id": deterministic_id("trade", "binance", "BTC-USDT", 1),
    "event_time": T0,
    "received_at": T0 + timedelta(milliseconds=3),
    "source": "binance",
    "revision": 2,
    "type": "price",
    "kind": "ticker",
    "market": "perpetual",
    "symbol": "BTC-USDT",
    "base": "BTC",
    "quote": "USDT",
    "asset_id": "bitcoin",
    "native_symbol": "BTC/USDT \u6bd4\u7279\u5e01",
    "price": Decimal("64000.50"),
    "size": Decimal("0.00100000"),
    "side": "buy",
    "trade_id": "t-1:2",
    "bid": Decimal("63999.9"),
    "bid_size": Decimal("0"),
    "ask": Decimal("64000.1"),
    "ask_size": Decimal("2"),
    "volume_24h": Decimal("12345.678"),
    "quote_volume_24h": Decimal("790000000.5"),
    "market_cap": Decimal("1260000000000"),
    "change_24h_pct": Decimal("-3.25"),
    "contributors": ("binance", "kraken"),
    "network": "ethereum",
    "contract_address": "0x6982508145454ce325ddbe47a25d4ec3d2311933",
    "pool_address": "0xa43fe16908251ee70ef74718545e4fe6c5ccec9f",
    "tx_hash": "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060",
    "quote_size": Decimal("1.25"),
}


def samples() -> list[PriceEvent]:
    full = PriceEvent.model_validate(EVERY_FIELD)
    trade = PriceEvent(
        event_id="e-2",
        event_time=T0,
        received_at=T0,
        source="kraken",
        kind="trade",
        symbol="PEPE-USDT",
        base="PEPE",
        quote="USDT",
        price=Decimal("0.00000000123456789012345678901234567890"),
        size=Decimal("1E+3"),
    )
    quote = PriceEvent(
        event_id="e-3",
        event_time=T0,
        received_at=T0,
        source="coinbase",
        kind="quote",
        symbol="USDC.e-WETH",
        base="USDC.e",
        quote="WETH",
        bid=Decimal("1"),
        ask=Decimal("1.0001"),
    )
    return [full, trade, quote]


def test_the_full_sample_sets_every_model_field() -> None:
    """So the comparison below covers each field the model has (add one there, it is here)."""
    assert set(PriceEvent.model_validate(EVERY_FIELD).model_fields_set) == set(
        PriceEvent.model_fields
    )
    assert price_fields() == list(PriceEvent.model_fields)


@pytest.mark.parametrize("event", samples(), ids=lambda e: f"{e.kind}-{e.symbol}")
def test_every_model_field_reads_the_same_on_both_paths(event: PriceEvent) -> None:
    wire = event.to_json()
    record = read_price(wire)
    model = decode_event(wire)
    assert record is not None and isinstance(model, PriceEvent)
    as_json = model.model_dump(mode="json")
    for name in PriceEvent.model_fields:
        fast = getattr(record.wire, name)
        if name in ("event_time", "received_at"):
            assert getattr(record, name) == getattr(model, name), name
            assert getattr(record, name).utcoffset() == timedelta(0)
        elif isinstance(getattr(model, name), Decimal):
            assert Decimal(fast) == getattr(model, name), name
            assert fast == as_json[name], name  # the same text the model writes
        elif isinstance(getattr(model, name), tuple):
            assert tuple(fast) == getattr(model, name), name
        else:
            assert fast == getattr(model, name), name


def _mutate(**changes: object) -> bytes:
    obj = json.loads(samples()[0].to_json())
    for k, v in changes.items():
        if v is ...:
            obj.pop(k)
        else:
            obj[k] = v
    return json.dumps(obj).encode()


REFUSED: list[dict[str, object]] = [
    {"price": "0"},
    {"price": "-1"},
    {"bid": "-0.5"},
    {"size": "-0.5"},
    {"market_cap": "-1"},
    {"price": "1" + "0" * 80},
    {"price": "0." + "0" * 80 + "1"},
    {"price": "NaN"},
    {"price": "abc"},
    {"price": 64000.5},
    {"size": True},
    {"change_24h_pct": "-100.000000000000000001"},
    {"symbol": "ETH-USDT"},
    {"symbol": "BTC\u202e-USDT", "base": "BTC\u202e"},
    {"base": "B TC", "symbol": "B TC-USDT"},
    {"source": "Binance"},
    {"event_id": "has space"},
    {"event_id": ""},
    {"asset_id": "bit coin"},
    {"trade_id": "a\tb"},
    {"native_symbol": "BTC\nUSDT"},
    {"native_symbol": "BTC\u200bUSDT"},
    {"contributors": ["bin ance"]},
    {"event_time": "1999-01-01T00:00:00.000000Z"},
    {"event_time": "2100-01-01T00:00:00.000000Z"},
    {"event_time": "2026-03-01T12:00:00"},
    {"schema_version": 2},
    {"revision": -1},
    {"kind": "rumour"},
    {"side": "hold"},
    {"type": ...},
    {"event_id": ...},
    {"symbol": None},
]


@pytest.mark.parametrize("change", REFUSED, ids=",".join)
def test_what_the_models_refuse_the_fast_reader_never_accepts(change: dict[str, object]) -> None:
    wire = _mutate(**change)
    assert read_price(wire) is None
    with pytest.raises(ValidationError):
        decode_event(wire)


@pytest.mark.parametrize(
    "change",
    [
        {"price": 64000},  # a JSON integer: the canonical wire writes strings
        {"price": " 1.5"},
        {"price": "1E+3"},
        {"price": "+1.5"},
        {"revision": "2"},  # the models read numeric strings as integers
        {"event_time": " 2026-03-01T12:00:00Z "},
    ],
    ids=repr,
)
def test_unusual_spellings_the_models_accept_are_left_to_them(change: dict[str, object]) -> None:
    wire = _mutate(**change)
    assert read_price(wire) is None
    assert isinstance(decode_event(wire), PriceEvent)


def test_offsets_are_normalised_to_utc_and_unknown_fields_ignored() -> None:
    wire = _mutate(event_time="2026-03-01T13:00:00+01:00", note="from a newer producer")
    record = read_price(wire)
    model = decode_event(wire)
    assert record is not None and isinstance(model, PriceEvent)
    assert record.event_time == model.event_time == T0
    assert record.event_time.tzinfo is UTC


def test_non_price_events_and_garbage_are_left_to_the_models() -> None:
    assert read_price(b"[1, 2]") is None
    assert read_price(b"{not json") is None
    assert read_price(_mutate(type="sentiment")) is None
    assert fastcodec.read_price(samples()[1].to_json()) is not None
