"""Exact numbers and every time form the sources use, as pure functions.

Numbers: payloads are decoded with floats as ``Decimal`` (``loads``), so no value ever passes
through a binary float; every numeric field accepts a JSON number or a decimal string.

Times: Unix seconds, milliseconds, microseconds or nanoseconds (numbers or numeric strings),
ISO-8601 / RFC 3339 with ``Z`` or an offset and up to nanosecond fractions, and Go's
``time.String()`` form (``2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.5``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation
from typing import Any, Literal

import msgspec

from coinstream.normalizer.errors import ParseError
from coinstream.schemas import limits

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TimeUnit = Literal["s", "ms", "us", "ns", "auto"]

_decoder = msgspec.json.Decoder(float_hook=Decimal)
_FRACTION = re.compile(r"\.(\d+)")
_GO_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?) ([+-]\d{2})(\d{2})(?: [A-Z]+)?(?: m=.*)?$"
)
_UNIT_DIVISOR = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


_FINEST = Decimal(1).scaleb(-limits.MAX_FRACTION_DIGITS)
_WIDE = Context(prec=2 * (limits.MAX_INTEGER_DIGITS + limits.MAX_FRACTION_DIGITS))


def fit_decimal(value: Decimal) -> Decimal:
    """A computed decimal (a quotient) rounded to the contract's finest digit when it has
    more fraction digits than the contract carries; unchanged otherwise."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -limits.MAX_FRACTION_DIGITS:
        return value.quantize(_FINEST, context=_WIDE)
    return value


def loads(text: str | bytes) -> Any:
    """Decode JSON with every float as an exact ``Decimal`` (integers stay ``int``, any size)."""
    try:
        return _decoder.decode(text)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ParseError(f"payload is not valid JSON: {exc}") from exc


def to_decimal(value: Any, name: str = "value") -> Decimal:
    """A finite ``Decimal`` from a JSON number (int/Decimal) or a decimal string."""
    if type(value) is str:
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ParseError(f"{name} is not a decimal number: {value!r}") from None
    elif isinstance(value, Decimal):
        result = value
    elif type(value) is int:
        return Decimal(value)
    else:
        raise ParseError(f"{name} must be a number or decimal string, got {value!r}")
    if not result.is_finite():
        raise ParseError(f"{name} must be finite, got {value!r}")
    return result


def opt_decimal(value: Any, name: str = "value") -> Decimal | None:
    """Like ``to_decimal`` but ``None``/``""`` give ``None`` (nullable fields)."""
    if value is None or value == "":
        return None
    return to_decimal(value, name)


def opt_int(value: Any, name: str = "value") -> int | None:
    if value is None or value == "":
        return None
    if type(value) is int:
        return value
    number = to_decimal(value, name)
    if number != number.to_integral_value():
        raise ParseError(f"{name} must be an integer, got {value!r}")
    return int(number)


def from_epoch(value: Any, unit: TimeUnit = "auto", name: str = "timestamp") -> datetime:
    """A UTC datetime from a Unix timestamp (number or numeric string), exactly.

    ``unit="auto"`` infers seconds/ms/µs/ns from the magnitude (valid for dates 1973-5138),
    which also covers Binance streams opened with ``timeUnit=MICROSECOND``.
    """
    number: int | Decimal = value if type(value) is int else to_decimal(value, name)
    if unit == "auto":
        magnitude = number if number >= 0 else -number
        if magnitude < 100_000_000_000:
            unit = "s"
        elif magnitude < 100_000_000_000_000:
            unit = "ms"
        elif magnitude < 100_000_000_000_000_000:
            unit = "us"
        else:
            unit = "ns"
    if unit == "ms" and type(number) is int:
        return EPOCH + timedelta(milliseconds=number)
    micros = number * 1_000_000 // _UNIT_DIVISOR[unit] if type(number) is int else None
    if micros is None:
        micros = int((Decimal(number) * 1_000_000 / _UNIT_DIVISOR[unit]).to_integral_value())
    try:
        return EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise ParseError(f"{name} out of range: {value!r}") from None


def parse_time(value: Any, unit: TimeUnit = "auto", name: str = "timestamp") -> datetime:
    """A UTC datetime from any supported time form (see module docstring)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ParseError(f"{name} has no timezone: {value!r}")
        return value.astimezone(UTC)
    if type(value) is int or isinstance(value, Decimal):
        return from_epoch(value, unit, name)
    if type(value) is not str or not value:
        raise ParseError(f"{name} must be a timestamp, got {value!r}")
    text = value.strip()
    if text[0].isdigit() and text.replace(".", "", 1).isdigit():
        return from_epoch(text, unit, name)
    go = _GO_TIME.match(text)
    if go:
        date, clock, hours, minutes = go.groups()
        text = f"{date}T{clock}{hours}:{minutes}"
    return _parse_iso(text, value, name)


def _parse_iso(text: str, original: str, name: str) -> datetime:
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python parses at most 6 fractional digits: truncate nanoseconds to microseconds.
    fraction = _FRACTION.search(text)
    if fraction and len(fraction.group(1)) > 6:
        text = text[: fraction.start(1) + 6] + text[fraction.end(1) :]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ParseError(f"{name} is not a recognised time: {original!r}") from None
    if parsed.tzinfo is None:
        if len(text) == 10:  # a bare date (genesis_date): midnight UTC
            return parsed.replace(tzinfo=UTC)
        raise ParseError(f"{name} has no timezone: {original!r}")
    return parsed.astimezone(UTC)


def opt_time(value: Any, unit: TimeUnit = "auto", name: str = "timestamp") -> datetime | None:
    if value is None or value == "":
        return None
    return parse_time(value, unit, name)


def require(mapping: Any, key: str, where: str) -> Any:
    """``mapping[key]``, or a ``ParseError`` naming what is missing and where."""
    if not isinstance(mapping, dict):
        raise ParseError(f"{where} must be a JSON object, got {type(mapping).__name__}")
    try:
        return mapping[key]
    except KeyError:
        raise ParseError(f"{where} has no {key!r} field") from None


def as_dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ParseError(f"{where} must be a JSON array, got {type(value).__name__}")
    return value
