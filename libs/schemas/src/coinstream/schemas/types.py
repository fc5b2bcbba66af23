"""Field types shared by every Coinstream event: exact decimals and UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer


def _exact_decimal(value: Any) -> Decimal:
    """Accept str, int or Decimal; refuse float so no value ever passes through binary floats."""
    if isinstance(value, bool):
        raise ValueError("a decimal is required, not a boolean")
    if isinstance(value, float):
        raise ValueError(
            "floats are not accepted: pass the decimal as a string or Decimal "
            "(parse JSON with parse_float=Decimal)"
        )
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(value)
        except InvalidOperation as exc:
            raise ValueError(f"not a decimal number: {value!r}") from exc
    else:
        raise ValueError(f"a decimal string is required, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"decimal must be finite, got {value!r}")
    return result


def _decimal_to_str(value: Decimal) -> str:
    """Plain positional notation, no exponent: Decimal('1E-12') -> '0.000000000001'."""
    text = format(value, "f")
    return "0" if text in {"-0", "0"} else text


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        value = datetime.fromisoformat(text)
    if not isinstance(value, datetime):
        raise ValueError(f"a timezone-aware datetime is required, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetimes are not accepted: give a timezone (UTC)")
    return value.astimezone(UTC)


def _utc_to_str(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


ExactDecimal = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    PlainSerializer(_decimal_to_str, return_type=str, when_used="json"),
]
"""A finite decimal. Serialized as a plain string (``"0.000000000001"``), never a JSON number."""

UtcDatetime = Annotated[
    datetime,
    BeforeValidator(_utc),
    PlainSerializer(_utc_to_str, return_type=str, when_used="json"),
]
"""A timezone-aware datetime normalised to UTC, serialized as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
