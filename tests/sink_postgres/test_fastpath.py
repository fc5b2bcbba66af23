"""The price fast path gives exactly the rows of the model path, and defers when unsure."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from coinstream.schemas import decode_event
from coinstream.sink_postgres.copytext import copy_line
from coinstream.sink_postgres.fastpath import price_entry_from_json, price_rows_from_json
from coinstream.sink_postgres.rows import event_rows
from coinstream.sink_postgres.tables import PRICES

from . import events

SAMPLES = [
    events.trade(1),
    events.trade(2, symbol="PEPE-USDT", price="0.00000000123456789012345678901234567890"),
    events.trade(3, revision=4, asset_id="bitcoin"),
    events.quote(4),
    events.trade(5, price="1E+3", volume_24h=Decimal("-0"), change_24h_pct=Decimal("-3.5")),
]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: f"{e.kind}-{e.symbol}")
def test_fast_rows_equal_model_rows(event: object) -> None:
    wire = event.to_json()  # type: ignore[attr-defined]
    fast = price_rows_from_json(wire)
    model = event_rows(decode_event(wire))
    assert fast is not None
    assert [(t.name, r) for t, r in fast] == [(t.name, r) for t, r in model]


def _mutate(**changes: object) -> bytes:
    obj = json.loads(events.trade(1).to_json())
    for k, v in changes.items():
        if v is ...:
            obj.pop(k)
        else:
            obj[k] = v
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    "wire",
    [
        _mutate(price=64000.5),  # a float: the schema refuses it
        _mutate(price="NaN"),
        _mutate(price="abc"),
        _mutate(size=True),
        _mutate(event_time="2026-03-01T12:00:00"),  # naive
        _mutate(event_id=...),
        _mutate(symbol=None),
        _mutate(kind="consolidated"),
        _mutate(side="hold"),
        _mutate(revision=-1),
        _mutate(revision="2"),
        _mutate(type="sentiment"),
        b"[1, 2]",
        b"{not json",
    ],
)
def test_anything_doubtful_is_left_to_the_models(wire: bytes) -> None:
    assert price_rows_from_json(wire) is None


def test_offsets_are_normalised_to_utc_like_the_schema() -> None:
    wire = _mutate(event_time="2026-03-01T13:00:00+01:00")
    fast = price_rows_from_json(wire)
    model = event_rows(decode_event(wire))
    assert fast is not None and fast[0][1] == model[0][1]
    assert fast[0][1][0].utcoffset().total_seconds() == 0


def test_unusual_but_valid_timestamps_are_left_to_the_models() -> None:
    wire = _mutate(event_time=" 2026-03-01T12:00:00Z ")
    assert price_rows_from_json(wire) is None
    assert event_rows(decode_event(wire))[0][1][0] == events.T0  # the models accept it


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: f"{e.kind}-{e.symbol}")
def test_fast_copy_line_is_the_model_rows_copy_line(event: object) -> None:
    """Both paths send PostgreSQL the same bytes for the same event."""
    wire = event.to_json()  # type: ignore[attr-defined]
    entry = price_entry_from_json(wire)
    [(_, model_row)] = event_rows(decode_event(wire))
    assert entry is not None
    assert entry[1] == copy_line(model_row)


def test_special_characters_in_strings_are_escaped_like_the_model_path() -> None:
    wire = _mutate(native_symbol="\\N c\\d")
    entry = price_entry_from_json(wire)
    [(_, model_row)] = event_rows(decode_event(wire))
    assert entry is not None and entry[1] == copy_line(model_row)
    assert entry[1].count("\t") == len(PRICES.columns) - 1 and entry[1].count("\n") == 1
    assert "\t\\\\N c\\\\d\t" in entry[1]


@pytest.mark.parametrize(
    "change",
    [
        {"trade_id": "a\tb"},
        {"trade_id": "x y"},
        {"native_symbol": "BTC\nUSDT"},
        {"symbol": "BTC\u202e-USDT", "base": "BTC\u202e"},
        {"symbol": "ETH-USDT"},
        {"price": "0"},
        {"price": "-1"},
        {"price": "1" + "0" * 80},
        {"price": "0." + "0" * 80 + "1"},
        {"size": "-0.5"},
        {"change_24h_pct": "-100.000000000000000001"},
        {"event_time": "1999-01-01T00:00:00.000000Z"},
        {"event_time": "2100-01-01T00:00:00.000000Z"},
        {"schema_version": 2},
        {"event_id": "has space"},
    ],
)
def test_what_the_contract_refuses_the_fast_path_leaves_to_the_models(
    change: dict[str, object],
) -> None:
    """The fast path never accepts what the models refuse: it defers, and they name why."""
    wire = _mutate(**change)
    assert price_entry_from_json(wire) is None
    with pytest.raises(ValueError):
        decode_event(wire)


def test_non_canonical_timestamps_are_normalised() -> None:
    wire = _mutate(event_time="2026-03-01T13:00:00+01:00")
    entry = price_entry_from_json(wire)
    [(_, model_row)] = event_rows(decode_event(wire))
    assert entry is not None and entry[1] == copy_line(model_row)
    assert entry[1].startswith("2026-03-01T12:00:00.000000Z\t")


def test_integer_decimals_are_left_to_the_models() -> None:
    """The canonical wire writes decimals as strings; a JSON integer is read by the models."""
    wire = _mutate(price=64000)
    assert price_entry_from_json(wire) is None
    [(_, model_row)] = event_rows(decode_event(wire))
    assert "\t64000\t" in copy_line(model_row)


@pytest.mark.parametrize("number", [" 1.5", "1_000", "+1.5", "1.", ".5", "١٢", "Infinity", "1e"])
def test_numbers_postgres_might_read_differently_are_left_to_the_models(number: str) -> None:
    """Decimal() reads these (or refuses them); the fast path only takes plain numbers."""
    assert price_entry_from_json(_mutate(price=number)) is None


def test_unknown_fields_are_ignored_like_the_models_do() -> None:
    wire = _mutate(venue_note="from a newer producer")
    entry = price_entry_from_json(wire)
    [(_, model_row)] = event_rows(decode_event(wire))
    assert entry is not None and entry[1] == copy_line(model_row)
