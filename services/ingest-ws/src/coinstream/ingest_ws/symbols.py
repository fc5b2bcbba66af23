"""Canonical symbols (``BTC-USDT``) and one venue's own form, with start-up validation.

What a venue trades and how it spells a symbol is the venue plugin's knowledge: its
``VenueProtocol`` class is a ``SymbolForm`` (the catalogue ``bases`` x ``quotes`` of the
assets Coinstream follows, ``native()`` and ``canonical()``). This module only holds what is
the same for every venue: the canonical grammar, the validation of configured symbols and the
two-way map. A symbol outside the catalogue is rejected at start-up (``UnknownSymbolError``)
unless listed in the venue's ``extra_symbols`` setting. Validation is deliberately offline:
start-up never depends on a venue's REST API being reachable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from coinstream.ingest_ws.errors import UnknownSymbolError

CANONICAL = re.compile(r"^[A-Z0-9]{2,15}-[A-Z0-9]{2,10}$")


class SymbolForm(Protocol):
    """How one venue names instruments (a ``VenueProtocol`` class is one)."""

    name: str
    bases: frozenset[str]
    quotes: frozenset[str]

    def native(self, symbol: str) -> str:
        """Canonical ``BTC-USDT`` -> the venue's own form."""
        ...

    def canonical(self, native: str) -> str | None:
        """Best-effort canonical form of a venue symbol seen on the wire, or None."""
        ...


def split(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("-")
    return base, quote


def env_name(venue: str, setting: str) -> str:
    """``INGEST_WS_<VENUE>__<SETTING>``, the variable that configures ``setting`` of ``venue``."""
    return f"INGEST_WS_{venue.upper().replace('-', '_')}__{setting.upper()}"


def is_listed(form: SymbolForm, symbol: str) -> bool:
    """True if the venue's catalogue says it trades the canonical ``symbol``."""
    if not CANONICAL.match(symbol):
        return False
    base, quote = split(symbol)
    return base != quote and base in form.bases and quote in form.quotes


def split_concatenated(native: str, quotes: Iterable[str]) -> str | None:
    """``ABCUSDT`` -> ``ABC-USDT`` at the longest known quote code that ends it, or None."""
    upper = native.upper()
    for quote in sorted(quotes, key=len, reverse=True):
        if upper.endswith(quote) and len(upper) > len(quote):
            return f"{upper[: -len(quote)]}-{quote}"
    return None


def split_at(native: str, sep: str, aliases: Mapping[str, str] | None = None) -> str | None:
    """``ABC/USD`` -> ``ABC-USD``: split at ``sep``, legacy codes replaced by ``aliases``."""
    if sep not in native:
        return None
    base, _, quote = native.upper().partition(sep)
    if not base or not quote:
        return None
    codes = aliases or {}
    return f"{codes.get(base, base)}-{codes.get(quote, quote)}"


@dataclass
class SymbolMap:
    """Two-way mapping between canonical symbols and one venue's symbols."""

    form: SymbolForm
    canonical: tuple[str, ...]
    _from_venue: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def venue(self) -> str:
        return self.form.name

    @classmethod
    def build(
        cls, form: SymbolForm, symbols: Iterable[str], extra: Iterable[str] = ()
    ) -> SymbolMap:
        """Validate ``symbols`` for the venue; raise ``UnknownSymbolError`` naming every bad one."""
        venue = form.name
        wanted = list(dict.fromkeys(symbols))
        allowed_extra = set(extra)
        bad_form = [s for s in wanted if not CANONICAL.match(s)]
        if bad_form:
            raise UnknownSymbolError(
                f"{venue}: {', '.join(bad_form)} not in canonical form BASE-QUOTE with upper-case "
                f"codes (e.g. BTC-USDT); fix {env_name(venue, 'symbols')}"
            )
        unknown = [s for s in wanted if not is_listed(form, s) and s not in allowed_extra]
        if unknown:
            raise UnknownSymbolError(
                f"{venue}: unknown symbol(s) {', '.join(unknown)}; {venue} quotes are "
                f"{', '.join(sorted(form.quotes))}. Remove them from "
                f"{env_name(venue, 'symbols')}, or if {venue} does list them add them to "
                f"{env_name(venue, 'extra_symbols')}"
            )
        mapping = cls(form, tuple(wanted))
        for s in wanted:
            native = form.native(s)
            mapping._from_venue[native] = s
            mapping._from_venue[native.lower()] = s
        return mapping

    def to_venue(self, symbol: str) -> str:
        return self.form.native(symbol)

    def from_venue(self, native: str) -> str | None:
        """The canonical symbol of a venue symbol, or None if it cannot be mapped."""
        found = self._from_venue.get(native)
        if found is not None:
            return found
        return self.form.canonical(native)
