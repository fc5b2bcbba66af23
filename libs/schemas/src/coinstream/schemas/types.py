"""Field types shared by every Coinstream event: exact decimals, UTC timestamps, symbols.

The rules behind them (digit limits, symbol grammar, time bounds) are in ``limits``; the JSON
Schema of each type states the same limits as a pattern and a description.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

from coinstream.schemas import limits


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
    return limits.check_decimal(result, "decimal")


def _decimal_to_str(value: Decimal) -> str:
    """Plain positional notation, no exponent: Decimal('1E-12') -> '0.000000000001'."""
    text = format(value, "f")
    return "0" if text in {"-0", "0"} else text


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an RFC 3339 time: {value[:60]!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"a timezone-aware datetime is required, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetimes are not accepted: give a timezone (UTC)")
    return value.astimezone(UTC)


def _utc_to_str(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_DECIMAL_DOC = (
    f"Exact decimal as a plain string, at most {limits.MAX_INTEGER_DIGITS} digits before and "
    f"{limits.MAX_FRACTION_DIGITS} after the point"
)

ExactDecimal = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    PlainSerializer(_decimal_to_str, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": limits.DECIMAL_PATTERN, "description": _DECIMAL_DOC},
        mode="serialization",
    ),
]
"""A finite decimal within the contract's digit limits (``limits``). Serialized as a plain
string (``"0.000000000001"``), never a JSON number."""

PositiveDecimal = Annotated[
    ExactDecimal,
    AfterValidator(lambda v: limits.check_positive(v, "decimal")),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": limits.POSITIVE_DECIMAL_PATTERN,
            "description": f"{_DECIMAL_DOC}; greater than zero",
        },
        mode="serialization",
    ),
]
"""An ``ExactDecimal`` greater than zero (prices)."""

NonNegativeDecimal = Annotated[
    ExactDecimal,
    AfterValidator(lambda v: limits.check_non_negative(v, "decimal")),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": limits.NON_NEGATIVE_DECIMAL_PATTERN,
            "description": f"{_DECIMAL_DOC}; zero or more",
        },
        mode="serialization",
    ),
]
"""An ``ExactDecimal`` of zero or more (sizes, volumes, supplies)."""

UtcDatetime = Annotated[
    datetime,
    BeforeValidator(_utc),
    PlainSerializer(_utc_to_str, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": (
                r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
                r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)\.[0-9]{6}Z$"
            ),
            "description": "UTC time, RFC 3339 with microseconds and Z",
        },
        mode="serialization",
    ),
]
"""A timezone-aware datetime normalised to UTC, serialized as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""


def _schema(pattern: str, description: str, max_length: int | None = None) -> WithJsonSchema:
    schema: dict[str, Any] = {"type": "string", "pattern": pattern, "description": description}
    if max_length is not None:
        schema["maxLength"] = max_length
    return WithJsonSchema(schema)


AssetCode = Annotated[
    str,
    AfterValidator(limits.check_code),
    _schema(
        f"^{limits.CODE_PATTERN}$",
        "Canonical asset code: printable ASCII letters, digits, '.', '_', '+', '$'",
        limits.MAX_CODE_LENGTH,
    ),
]
"""A canonical asset code (``BTC``, ``USDC.e``, ``allBTC``)."""

CanonicalSymbol = Annotated[
    str,
    AfterValidator(limits.check_symbol),
    _schema(limits.SYMBOL_PATTERN, "Canonical symbol BASE-QUOTE", limits.MAX_SYMBOL_LENGTH),
]
"""A canonical symbol ``BASE-QUOTE`` (``BTC-USDT``)."""

SourceName = Annotated[
    str,
    AfterValidator(limits.check_source),
    _schema(limits.SOURCE_PATTERN, "Source or venue name", limits.MAX_SOURCE_LENGTH),
]
"""A source or venue name (``binance``, ``cmc-dex``)."""

Identifier = Annotated[
    str,
    AfterValidator(limits.check_identifier),
    _schema(
        limits.IDENTIFIER_PATTERN,
        "Printable ASCII without spaces",
        limits.MAX_IDENTIFIER_LENGTH,
    ),
]
"""An identifier: event ids, asset ids, entity ids, fingerprints."""

TradeId = Annotated[
    str,
    AfterValidator(limits.check_trade_id),
    _schema(limits.TRADE_ID_PATTERN, "Venue trade id", limits.MAX_TRADE_ID_LENGTH),
]
"""A venue trade id (venues narrow it further: digits only on Binance, Coinbase, Kraken)."""

_NO_CONTROLS = r"^[^\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]+$"

DisplayText = Annotated[
    str,
    AfterValidator(limits.check_display),
    _schema(
        _NO_CONTROLS,
        "One line of text in any script, without control or format characters",
        limits.MAX_DISPLAY_LENGTH,
    ),
]
"""One line of display text (a venue's own symbol, a name)."""

FreeText = Annotated[
    str,
    AfterValidator(limits.check_text),
    _schema(
        r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u202a-\u202e\u2066-\u2069]*$",
        "Text; line breaks allowed, no other control or format characters",
        limits.MAX_TEXT_LENGTH,
    ),
]
"""Free text (descriptions, causes, summaries)."""
