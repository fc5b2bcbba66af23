"""The boundary contract: what a canonical event may carry, as pure checks with clear reasons.

Every check raises ``ValueError`` with a message a person can act on (what was wrong, what
is allowed). The pydantic models (``types.py``) and every fast codec that writes or reads
the wire form call these functions, so the rules live here once.

Numbers
    Finite decimals that PostgreSQL ``numeric`` and every JSON reader can hold exactly: at
    most ``MAX_INTEGER_DIGITS`` (78) digits before the decimal point and
    ``MAX_FRACTION_DIGITS`` (78) after it. 78 digits hold any unsigned 256-bit integer, the
    widest amount a blockchain token can have, so no real market value is refused; anything
    larger (``1e400000``, ``1e308``) or finer (``1e-400000``) is not market data.
    PostgreSQL's own limits (131,072 digits before the point, 16,383 after) are far above.
    Prices are positive, sizes and volumes non-negative.

Symbols and identifiers
    A canonical asset code is 1-32 printable ASCII characters from ``A-Z a-z 0-9 . _ + $``
    and starts with a letter, digit or ``$`` (``BTC``, ``USDC.e``, ``allBTC``, ``1000PEPE``).
    A canonical symbol is ``BASE-QUOTE``. Anything else (control or format characters such as
    U+202E, look-alike letters from other scripts, full-width forms, emoji, spaces) is
    refused; a venue's own symbol travels unchanged in ``native_symbol`` (display text).
    Identifiers (event ids, asset and entity ids, trade ids) are printable ASCII without
    spaces. Display text has no control, format or unpaired surrogate characters.

Times
    ``event_time`` is not before the Bitcoin genesis block (2009-01-03T18:15:05Z) and not more
    than a configurable skew (default ``DEFAULT_MAX_FUTURE_SKEW``, 5 minutes) after
    ``received_at``.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from decimal import Decimal

MAX_INTEGER_DIGITS = 78
"""Digits before the decimal point at most (an unsigned 256-bit integer has 78)."""
MAX_FRACTION_DIGITS = 78
"""Digits after the decimal point at most."""
MAX_ABS_DECIMAL = Decimal(10) ** MAX_INTEGER_DIGITS
"""Every accepted decimal is strictly smaller than this in absolute value."""

EARLIEST_EVENT_TIME = datetime(2009, 1, 3, 18, 15, 5, tzinfo=UTC)
"""The Bitcoin genesis block: no crypto market event is older."""
DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=5)
"""How far ``event_time`` may be after ``received_at`` (clock skew between source and us)."""

MAX_CODE_LENGTH = 32
MAX_SYMBOL_LENGTH = 2 * MAX_CODE_LENGTH + 1
MAX_IDENTIFIER_LENGTH = 256
MAX_TRADE_ID_LENGTH = 64
MAX_SOURCE_LENGTH = 64
MAX_DISPLAY_LENGTH = 256
MAX_TEXT_LENGTH = 100_000

CODE_PATTERN = r"[A-Za-z0-9$][A-Za-z0-9._+$]{0,31}"
SYMBOL_PATTERN = rf"^{CODE_PATTERN}-{CODE_PATTERN}$"
SOURCE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
IDENTIFIER_PATTERN = r"^[\x21-\x7e]{1,256}$"
TRADE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
_PLAIN = r"(0|[1-9][0-9]{0,77})(\.[0-9]{1,78})?"
DECIMAL_PATTERN = rf"^-?{_PLAIN}$"
NON_NEGATIVE_DECIMAL_PATTERN = rf"^{_PLAIN}$"
POSITIVE_DECIMAL_PATTERN = rf"^(?!0(\.0+)?$){_PLAIN}$"
"""JSON Schema patterns of the wire forms (decimals are written in plain positional form)."""

_code = re.compile(rf"{CODE_PATTERN}\Z").match
_source = re.compile(SOURCE_PATTERN.replace("$", r"\Z")).match
_identifier = re.compile(r"[\x21-\x7e]+\Z").match
_trade_id = re.compile(TRADE_ID_PATTERN.replace("$", r"\Z")).match
_plain_decimal = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?\Z").match
# Categories no text field may contain: controls (except tab and newlines in long text),
# format characters (bidi overrides, zero-width joiners), surrogates, private use, unassigned.
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_TEXT_ALLOWED_CONTROLS = frozenset("\t\n\r")


_KINDS = {
    "Cc": "a control character",
    "Cf": "an invisible format character",
    "Cs": "an unpaired surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
}


def describe_char(ch: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE (an invisible format character)``: how reasons name
    a character."""
    kind = _KINDS.get(unicodedata.category(ch))
    name = unicodedata.name(ch, "")
    text = f"U+{ord(ch):04X} {name}".rstrip()
    return f"{text} ({kind})" if kind else text


def _first_bad(text: str, allowed: frozenset[str] = frozenset()) -> str | None:
    for ch in text:
        if ch in allowed:
            continue
        if unicodedata.category(ch) in _BAD_CATEGORIES:
            return ch
    return None


def _shown(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


# -- numbers ----------------------------------------------------------------------------


def check_decimal(value: Decimal, name: str = "value") -> Decimal:
    """A finite decimal within the digit limits (see module docstring)."""
    if not value.is_finite():
        raise ValueError(f"{name} must be a finite number, got {value}")
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if digits == (0,):
        if exponent < -MAX_FRACTION_DIGITS:
            raise ValueError(
                f"{name} has more than {MAX_FRACTION_DIGITS} digits after the decimal point"
            )
        return value
    integer_digits = len(digits) + exponent
    if integer_digits > MAX_INTEGER_DIGITS:
        raise ValueError(
            f"{name} is too large: about 1e{integer_digits - 1}, more than "
            f"{MAX_INTEGER_DIGITS} digits before the decimal point (no market value is that big)"
        )
    if -exponent > MAX_FRACTION_DIGITS:
        raise ValueError(
            f"{name} has {-exponent} digits after the decimal point; at most "
            f"{MAX_FRACTION_DIGITS} are accepted (no market value is that fine)"
        )
    return value


def check_positive(value: Decimal, name: str = "value") -> Decimal:
    check_decimal(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def check_non_negative(value: Decimal, name: str = "value") -> Decimal:
    check_decimal(value, name)
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def plain_decimal_ok(text: str, *, positive: bool = False, non_negative: bool = False) -> bool:
    """Whether ``text`` is a plain decimal (``-12.50``) within the limits: the fast codecs'
    check on wire text. False means "not certain": decide with ``check_decimal``."""
    m = _plain_decimal(text)
    if m is None:
        return False
    minus, integer, fraction = m.groups()
    if len(integer) > MAX_INTEGER_DIGITS or (fraction and len(fraction) > MAX_FRACTION_DIGITS):
        return False
    if minus and (positive or non_negative):
        return False
    nonzero = bool(integer.strip("0") or (fraction and fraction.strip("0")))
    return nonzero or not positive


# -- symbols, identifiers, text ---------------------------------------------------------


def check_code(code: str, name: str = "asset code") -> str:
    """A canonical asset code (``BTC``, ``USDC.e``)."""
    if _code(code):
        return code
    if not code:
        raise ValueError(f"{name} is empty")
    if len(code) > MAX_CODE_LENGTH:
        raise ValueError(f"{name} {_shown(code)} is longer than {MAX_CODE_LENGTH} characters")
    for ch in code:
        if not ("!" <= ch <= "~"):
            raise ValueError(
                f"{name} {_shown(code)} contains {describe_char(ch)}; canonical codes are "
                "printable ASCII (letters, digits, '.', '_', '+', '$')"
            )
    raise ValueError(
        f"{name} {_shown(code)} must be letters, digits, '.', '_', '+' or '$', "
        "starting with a letter, digit or '$'"
    )


def check_symbol(symbol: str, name: str = "symbol") -> str:
    """A canonical symbol ``BASE-QUOTE`` of two asset codes."""
    base, sep, quote = symbol.partition("-")
    if not sep:
        if len(symbol) > MAX_SYMBOL_LENGTH:
            raise ValueError(
                f"{name} {_shown(symbol)} is longer than {MAX_SYMBOL_LENGTH} characters"
            )
        check_code(symbol, name)  # names the offending character, if that is the problem
        raise ValueError(f"{name} {_shown(symbol)} must be BASE-QUOTE, e.g. BTC-USDT")
    check_code(base, f"{name} {_shown(symbol)}: base")
    check_code(quote, f"{name} {_shown(symbol)}: quote")
    return symbol


def check_source(source: str, name: str = "source") -> str:
    """A source or venue name: lower-case ASCII letters, digits and ``-`` (raw topic names)."""
    if _source(source):
        return source
    raise ValueError(
        f"{name} {_shown(source)} must be 1-{MAX_SOURCE_LENGTH} lower-case ASCII letters, "
        "digits or '-'"
    )


def check_identifier(
    ident: str, name: str = "identifier", max_length: int = MAX_IDENTIFIER_LENGTH
) -> str:
    """Printable ASCII without spaces (event ids, asset ids, entity ids)."""
    # printable ASCII less the space: exactly \x21-\x7e (str methods: faster than a regex)
    ok = ident and len(ident) <= max_length and ident.isascii() and ident.isprintable()
    if ok and " " not in ident:
        return ident
    if not ident:
        raise ValueError(f"{name} is empty")
    if len(ident) > max_length:
        raise ValueError(f"{name} {_shown(ident)} is longer than {max_length} characters")
    bad = next(ch for ch in ident if not ("!" <= ch <= "~"))
    raise ValueError(
        f"{name} {_shown(ident)} contains {describe_char(bad)}; identifiers are printable "
        "ASCII without spaces"
    )


def check_trade_id(trade_id: str, name: str = "trade_id") -> str:
    """A venue trade id: 1-64 of ``A-Z a-z 0-9 . _ : -``, starting with a letter or digit.

    Venues narrow it further in their parsers (Binance, Coinbase and Kraken: digits only).
    """
    if _trade_id(trade_id):
        return trade_id
    raise ValueError(
        f"{name} {_shown(trade_id)} must be 1-{MAX_TRADE_ID_LENGTH} ASCII letters, digits, "
        "'.', '_', ':' or '-', starting with a letter or digit"
    )


def check_display(text: str, name: str = "text", max_length: int = MAX_DISPLAY_LENGTH) -> str:
    """One line of display text (a venue's symbol, a name): any script, but no control,
    format, surrogate, private-use or unassigned characters."""
    if not text:
        raise ValueError(f"{name} is empty")
    if len(text) > max_length:
        raise ValueError(f"{name} {_shown(text)} is longer than {max_length} characters")
    if not text.isascii() or not text.isprintable():
        bad = _first_bad(text)
        if bad is not None:
            raise ValueError(f"{name} {_shown(text)} contains {describe_char(bad)}")
    return text


def check_text(text: str, name: str = "text", max_length: int = MAX_TEXT_LENGTH) -> str:
    """Free text (descriptions, causes, summaries): like display text, and it may also hold
    tabs and line breaks."""
    if len(text) > max_length:
        raise ValueError(f"{name} is longer than {max_length} characters ({len(text)})")
    if not text.isascii() or not text.isprintable():
        bad = _first_bad(text, _TEXT_ALLOWED_CONTROLS)
        if bad is not None:
            raise ValueError(f"{name} {_shown(text)} contains {describe_char(bad)}")
    return text


# -- times --------------------------------------------------------------------------------

_max_future_skew = DEFAULT_MAX_FUTURE_SKEW


def configure(*, max_future_skew: timedelta) -> None:
    """Set this process's clock-skew allowance (a service does it once, from its settings);
    the models and the fast codecs use it when no validation context overrides it."""
    global _max_future_skew
    if max_future_skew < timedelta(0):
        raise ValueError("max_future_skew must not be negative")
    _max_future_skew = max_future_skew


def max_future_skew() -> timedelta:
    """The clock-skew allowance in force (``configure``; 5 minutes by default)."""
    return _max_future_skew


def check_event_time(
    event_time: datetime, received_at: datetime, skew: timedelta | None = None
) -> None:
    """``event_time`` is not before 2009-01-03 and at most ``skew`` (default: the configured
    ``max_future_skew()``) after ``received_at``; ``received_at`` is not before 2009-01-03."""
    max_future_skew = _max_future_skew if skew is None else skew
    if event_time < EARLIEST_EVENT_TIME:
        raise ValueError(
            f"event_time {event_time.isoformat()} is before 2009-01-03 (the first block of "
            "Bitcoin): no crypto market event is that old"
        )
    if received_at < EARLIEST_EVENT_TIME:
        raise ValueError(f"received_at {received_at.isoformat()} is before 2009-01-03")
    if event_time - received_at > max_future_skew:
        raise ValueError(
            f"event_time {event_time.isoformat()} is {_ahead(event_time - received_at)} after "
            f"received_at {received_at.isoformat()}; at most "
            f"{max_future_skew.total_seconds():g} s of clock skew is accepted"
        )


def _ahead(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400 / 365.25:.1f} years"
