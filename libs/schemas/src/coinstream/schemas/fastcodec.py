"""A fast reader of canonical price events, for consumers of the hot topic (``prices.v1``).

Validating a price event through the pydantic models costs 40-60 µs (the decimal and UTC
validators run in Python). ``read_price`` reads the same wire form with a msgspec ``Struct``
(types checked in C) and applies the rest of the contract (``limits``) in a few Python
checks: about 3-5 µs. It never accepts what the models refuse. When it is not certain (a
number spelled unusually, a timestamp the models would have to strip, anything it does not
know), it returns ``None`` and the caller decodes with ``decode_event``, which either accepts
the event or names what is wrong.

The wire ``Struct`` is derived from ``PriceEvent``'s fields and their contract types, so a
field added to the model is read and checked here without another change; the tests compare
both paths field by field, taking the field list from the model.

    record = read_price(value)
    if record is None:
        event = decode_event(value)          # the models decide
    else:
        record.wire.symbol, record.wire.price  # validated text; decimals as written
        record.event_time                    # UTC datetime
"""

from __future__ import annotations

import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from operator import attrgetter
from types import NoneType, UnionType
from typing import Any, Literal, Protocol

import msgspec

from coinstream.schemas import limits
from coinstream.schemas.events import PriceEvent
from coinstream.schemas.types import (
    AssetCode,
    CanonicalSymbol,
    DisplayText,
    ExactDecimal,
    Identifier,
    NonNegativeDecimal,
    PositiveDecimal,
    SourceName,
    TradeId,
    UtcDatetime,
)

__all__ = ["PriceRecord", "PriceWire", "decimal_fields", "price_fields", "read_price"]


class PriceWire(Protocol):
    """The decoded and checked wire form of a price event (``read_price(...).wire``).

    Decimals are the validated number text as written on the wire (never ``Decimal``);
    ``event_time``/``received_at`` are the wire strings (the parsed UTC values are on the
    ``PriceRecord``). Fields added to ``PriceEvent`` are present too; list them here to use
    them with type checking.
    """

    schema_version: int
    type: str
    event_id: str
    event_time: str
    received_at: str
    source: str
    revision: int
    kind: Literal["trade", "quote", "ticker", "aggregate", "consolidated"]
    market: Literal["spot", "perpetual", "future"] | None
    symbol: str
    base: str
    quote: str
    asset_id: str | None
    native_symbol: str | None
    price: str | None
    size: str | None
    side: Literal["buy", "sell"] | None
    trade_id: str | None
    bid: str | None
    bid_size: str | None
    ask: str | None
    ask_size: str | None
    volume_24h: str | None
    quote_volume_24h: str | None
    market_cap: str | None
    change_24h_pct: str | None
    contributors: list[str]
    network: str | None
    contract_address: str | None
    pool_address: str | None
    tx_hash: str | None
    quote_size: str | None


class PriceRecord(msgspec.Struct, frozen=True, gc=False):
    """A price event read by ``read_price``: the checked wire form and its UTC times."""

    wire: PriceWire
    event_time: datetime
    received_at: datetime


# -- the wire struct, derived from the model ----------------------------------------------


def _anchored(pattern: str) -> str:
    """A contract pattern anchored at the very end (``$`` also matches before a newline)."""
    return re.sub(r"\$(?=\)|\Z)", lambda _: r"\Z", pattern)


# Contract type -> its Python check. Values of the low-cardinality fields (source, symbol,
# codes, asset id, native symbol) are checked once per distinct tuple; ``_PER_EVENT`` fields
# (ids that differ on every event) each time.
_TEXT_RULES: list[tuple[Any, Any]] = [
    (CanonicalSymbol, limits.check_symbol),
    (AssetCode, limits.check_code),
    (SourceName, limits.check_source),
    (Identifier, limits.check_identifier),
    (DisplayText, limits.check_display),
    (TradeId, limits.check_trade_id),
]
_PER_EVENT = frozenset({"event_id", "trade_id"})
_DECIMAL_RULES: list[tuple[Any, str]] = [
    (PositiveDecimal, limits.POSITIVE_DECIMAL_PATTERN),
    (NonNegativeDecimal, limits.NON_NEGATIVE_DECIMAL_PATTERN),
    (ExactDecimal, limits.DECIMAL_PATTERN),
]


def _unwrap(hint: Any) -> Any:
    """``X | None`` -> ``X``."""
    if typing.get_origin(hint) in (typing.Union, UnionType):
        args = [a for a in typing.get_args(hint) if a is not NoneType]
        if len(args) == 1:
            return args[0]
    return hint


def _rule(table: list[Any], hint: Any) -> Any:
    for row in table:
        if hint == row[0]:
            return row
    return None


@dataclass(frozen=True)
class _Field:
    name: str
    wire_type: Any
    default: Any  # msgspec.NODEFAULT when required
    check: Any = None  # a limits check, for text fields
    items_check: Any = None  # for tuples of text
    time: bool = False


def _text(pattern: str) -> Any:
    return typing.Annotated[str, msgspec.Meta(pattern=_anchored(pattern))]


def _describe_field(name: str, hint: Any, info: Any) -> _Field:
    """How one model field travels on the wire and which contract check applies.

    Decimals must be plain number text matching the contract's pattern, checked by msgspec
    in C (an integer or any other spelling is left to the models); text fields by their
    ``limits`` check."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, UnionType):
        args = [a for a in typing.get_args(hint) if a is not NoneType]
        optional = len(args) < len(typing.get_args(hint))
        if len(args) != 1:
            raise TypeError(f"fastcodec: field {name!r} has an unsupported union type {hint}")
        hint = args[0]
    if name == "type" or info.is_required():  # "type": decode_event requires the tag
        default: Any = msgspec.NODEFAULT
    else:
        default = info.get_default(call_default_factory=True)
        if isinstance(default, tuple):
            default = list(default)

    def wire(t: Any) -> Any:
        return t | None if optional else t

    decimal = _rule(_DECIMAL_RULES, hint)
    if decimal is not None:
        return _Field(name, wire(_text(decimal[1])), default)
    if hint == UtcDatetime:
        return _Field(name, wire(str), default, time=True)
    text = _rule(_TEXT_RULES, hint)
    if text is not None:
        return _Field(name, wire(str), default, check=text[1])
    origin = typing.get_origin(hint)
    if origin is tuple:
        item, ellipsis = typing.get_args(hint)
        rule = _rule(_TEXT_RULES, item)
        if ellipsis is not Ellipsis or rule is None:
            raise TypeError(f"fastcodec: field {name!r} has an unsupported tuple type {hint}")
        return _Field(name, wire(list[str]), default, items_check=rule[1])
    if origin is Literal or hint in (str, bool):
        return _Field(name, wire(hint), default)
    if hint is int:
        meta: dict[str, Any] = {}
        for m in info.metadata:  # annotated_types.Ge / Le from Field(ge=..., le=...)
            for bound in ("ge", "le"):
                if getattr(m, bound, None) is not None:
                    meta[bound] = getattr(m, bound)
        constrained = typing.Annotated[int, msgspec.Meta(**meta)] if meta else int
        return _Field(name, wire(constrained), default)
    raise TypeError(f"fastcodec: field {name!r} has a type the fast reader does not know: {hint}")


def price_fields() -> list[str]:
    """The fields the fast reader decodes and checks: those of ``PriceEvent``."""
    return list(_FIELDS)


def decimal_fields() -> frozenset[str]:
    """``PriceEvent``'s decimal fields (from the model's types)."""
    return _DECIMAL_NAMES


_HINTS = typing.get_type_hints(PriceEvent, include_extras=True)
_FIELDS = {
    name: _describe_field(name, _HINTS[name], info)
    for name, info in PriceEvent.model_fields.items()
}
_Wire = msgspec.defstruct(
    "PriceWire",
    [
        (f.name, f.wire_type)
        if f.default is msgspec.NODEFAULT
        else (f.name, f.wire_type, f.default)
        for f in sorted(_FIELDS.values(), key=lambda f: f.default is not msgspec.NODEFAULT)
    ],
    kw_only=True,
    gc=False,
)
_decode: Callable[[bytes | str], PriceWire] = msgspec.json.Decoder(_Wire).decode  # type: ignore[assignment]
_DECIMAL_NAMES = frozenset(
    name
    for name, hint in _HINTS.items()
    if name in _FIELDS and _rule(_DECIMAL_RULES, _unwrap(hint))
)
_CACHED = tuple(f.name for f in _FIELDS.values() if f.check and f.name not in _PER_EVENT)
_CHECKS = tuple(_FIELDS[n].check for n in _CACHED)
_get_cached = attrgetter(*_CACHED, *_CACHED)  # twice: a tuple even for one field
_EVENT_TEXT = tuple(f.name for f in _FIELDS.values() if f.check and f.name in _PER_EVENT)
_EVENT_CHECKS = tuple(_FIELDS[n].check for n in _EVENT_TEXT)
_get_event_text = attrgetter(*_EVENT_TEXT, *_EVENT_TEXT)
_LISTS = tuple((f.name, f.items_check) for f in _FIELDS.values() if f.items_check is not None)
_TIMES = tuple(f.name for f in _FIELDS.values() if f.time)
if _TIMES != ("event_time", "received_at"):  # pragma: no cover - a model change to review
    raise TypeError(f"fastcodec: unexpected time fields {_TIMES}")

_fromiso = datetime.fromisoformat  # Python 3.11 reads "Z"
_max_skew = limits.max_future_skew
_EARLIEST = limits.EARLIEST_EVENT_TIME
_MINUS_100 = Decimal(-100)
_checked_text: set[tuple[Any, ...]] = set()
_CACHE_LIMIT = 50_000


def _text_ok(values: tuple[Any, ...]) -> bool:
    """The low-cardinality text fields meet the contract (each distinct tuple checked once)."""
    if values in _checked_text:
        return True
    try:
        for value, check in zip(values, _CHECKS, strict=False):
            if value is not None:
                check(value)
    except ValueError:
        return False
    if len(_checked_text) >= _CACHE_LIMIT:
        _checked_text.clear()
    _checked_text.add(values)
    return True


def _utc(text: str) -> datetime | None:
    """An ISO-8601 time with an offset, in UTC; None when the models must decide."""
    value = _fromiso(text)
    if value.tzinfo is UTC:
        return value
    if value.utcoffset() is None:
        return None
    return value.astimezone(UTC)


def read_price(value: bytes | str) -> PriceRecord | None:
    """The checked wire form of a canonical price event, or ``None`` when the fast reader is
    not certain (then decode with ``decode_event``, which accepts it or says what is wrong).

    Written flat on purpose: it runs once per price record."""
    try:
        p = _decode(value)
        cached = _get_cached(p)
        if cached not in _checked_text and not _text_ok(cached):
            return None
        for v, check in zip(_get_event_text(p), _EVENT_CHECKS, strict=False):
            if v is not None:
                check(v)
        for name, check in _LISTS:
            for v in getattr(p, name):
                check(v)
        event_time, received_at = _utc(p.event_time), _utc(p.received_at)
        if event_time is None or received_at is None:
            return None
        if event_time < _EARLIEST or received_at < _EARLIEST:
            return None
        if event_time - received_at > _max_skew():
            return None
        # the model's own cross-field rules (PriceEvent._consistent)
        if p.symbol != f"{p.base}-{p.quote}":
            return None
        chg = p.change_24h_pct
        if chg is not None and chg[0] == "-" and Decimal(chg) < _MINUS_100:
            return None
    except (msgspec.DecodeError, ValueError):
        return None
    return PriceRecord(p, event_time, received_at)
