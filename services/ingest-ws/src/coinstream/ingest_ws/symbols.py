"""Canonical symbols (``BTC-USDT``) and each venue's own form, with start-up validation.

The catalogue below lists what each venue trades among the assets Coinstream follows; a symbol
outside it is rejected at start-up (``UnknownSymbolError``) unless listed in the venue's
``extra_symbols`` setting. Validation is deliberately offline: start-up never depends on a
venue's REST API being reachable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from coinstream.ingest_ws.errors import UnknownSymbolError

CANONICAL = re.compile(r"^[A-Z0-9]{2,15}-[A-Z0-9]{2,10}$")

_COMMON_BASES = frozenset(
    [
        "BTC",
        "ETH",
        "SOL",
        "XRP",
        "ADA",
        "DOGE",
        "DOT",
        "LINK",
        "LTC",
        "AVAX",
        "SHIB",
        "PEPE",
        "UNI",
        "ATOM",
        "XLM",
        "BCH",
        "NEAR",
        "APT",
        "ARB",
        "OP",
        "FIL",
        "ETC",
        "SUI",
        "AAVE",
        "MKR",
        "INJ",
        "RNDR",
        "GRT",
        "ALGO",
    ]
)

BASES: dict[str, frozenset[str]] = {
    "binance": _COMMON_BASES | {"BNB", "TRX", "TON", "WIF", "FDUSD", "USDC"},
    "coinbase": _COMMON_BASES | {"USDT"},
    "kraken": _COMMON_BASES | {"TRX", "TON", "WIF", "USDT", "USDC"},
}
QUOTES: dict[str, frozenset[str]] = {
    "binance": frozenset(
        ["USDT", "USDC", "FDUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY"]
    ),
    "coinbase": frozenset(["USD", "USDC", "USDT", "EUR", "GBP", "BTC", "ETH"]),
    "kraken": frozenset(["USD", "USDT", "USDC", "EUR", "GBP", "CAD", "JPY", "BTC", "ETH"]),
}
KRAKEN_ALIASES = {"XBT": "BTC", "XDG": "DOGE"}
"""Kraken's legacy asset codes (v1 and REST) and their canonical codes."""


def split(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("-")
    return base, quote


def is_listed(venue: str, symbol: str) -> bool:
    """True if the catalogue says ``venue`` trades the canonical ``symbol``."""
    if not CANONICAL.match(symbol):
        return False
    base, quote = split(symbol)
    return base != quote and base in BASES.get(venue, ()) and quote in QUOTES.get(venue, ())


def to_venue(venue: str, symbol: str) -> str:
    """Canonical -> the venue's form: ``BTCUSDT`` / ``BTC-USD`` / ``BTC/USD``."""
    base, quote = split(symbol)
    if venue == "binance":
        return f"{base}{quote}"
    if venue == "kraken":
        return f"{base}/{quote}"
    return symbol


@dataclass
class SymbolMap:
    """Two-way mapping between canonical symbols and one venue's symbols."""

    venue: str
    canonical: tuple[str, ...]
    _from_venue: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, venue: str, symbols: Iterable[str], extra: Iterable[str] = ()) -> SymbolMap:
        """Validate ``symbols`` for ``venue``; raise ``UnknownSymbolError`` naming every bad one."""
        wanted = list(dict.fromkeys(symbols))
        allowed_extra = set(extra)
        bad_form = [s for s in wanted if not CANONICAL.match(s)]
        if bad_form:
            raise UnknownSymbolError(
                f"{venue}: {', '.join(bad_form)} not in canonical form BASE-QUOTE with upper-case "
                f"codes (e.g. BTC-USDT); fix INGEST_WS_{venue.upper()}__SYMBOLS"
            )
        unknown = [s for s in wanted if not is_listed(venue, s) and s not in allowed_extra]
        if unknown:
            raise UnknownSymbolError(
                f"{venue}: unknown symbol(s) {', '.join(unknown)}; {venue} quotes are "
                f"{', '.join(sorted(QUOTES.get(venue, ())))}. Remove them from "
                f"INGEST_WS_{venue.upper()}__SYMBOLS, or if {venue} does list them add them to "
                f"INGEST_WS_{venue.upper()}__EXTRA_SYMBOLS"
            )
        mapping = cls(venue, tuple(wanted))
        for s in wanted:
            native = to_venue(venue, s)
            mapping._from_venue[native] = s
            mapping._from_venue[native.lower()] = s
        return mapping

    def to_venue(self, symbol: str) -> str:
        return to_venue(self.venue, symbol)

    def from_venue(self, native: str) -> str | None:
        """The canonical symbol of a venue symbol, or None if it cannot be mapped."""
        found = self._from_venue.get(native)
        if found is not None:
            return found
        return canonical_from_venue(self.venue, native)


def canonical_from_venue(venue: str, native: str) -> str | None:
    """Best-effort canonical form of a venue symbol seen on the wire (not only configured ones)."""
    if venue == "kraken" and "/" in native:
        base, _, quote = native.upper().partition("/")
        return f"{KRAKEN_ALIASES.get(base, base)}-{KRAKEN_ALIASES.get(quote, quote)}"
    if venue == "coinbase" and CANONICAL.match(native):
        return native
    if venue == "binance":
        upper = native.upper()
        for quote in sorted(QUOTES["binance"], key=len, reverse=True):
            if upper.endswith(quote) and len(upper) > len(quote):
                return f"{upper[: -len(quote)]}-{quote}"
    return None
