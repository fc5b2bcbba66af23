"""A fast decoder for the hot topic: canonical price events straight to table rows and text
COPY lines.

Validating through the pydantic models costs about 40-60 µs per price event on this machine
(Python-level decimal and UTC validators), and asyncpg's binary COPY encoding of the resulting
``Decimal``/``datetime`` values another 9-11 µs. This module reads the canonical wire form with
a msgspec ``Struct`` (types checked in C), applies the contract of ``coinstream.schemas``
(``limits``: decimal digit limits and signs, canonical symbols, identifiers, trade ids, the
event-time bounds; same required fields) and writes the row's text COPY line from the JSON
strings themselves: no ``Decimal`` is built. Anything it is not certain about returns ``None``
and the caller falls back to the full pydantic decoder, which then either accepts the event or
names what is wrong. It never accepts what the models would reject, and for canonical wire input
it sends PostgreSQL the same bytes as the model path (``copytext.copy_line``); tests compare
both.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import msgspec

from coinstream.schemas import limits
from coinstream.sink_postgres.copytext import NULL, escape, timestamp
from coinstream.sink_postgres.tables import PRICES, Row, Table

DECIMAL_COLUMNS = frozenset(
    (
        "price",
        "size",
        "bid",
        "bid_size",
        "ask",
        "ask_size",
        "volume_24h",
        "quote_volume_24h",
        "market_cap",
        "change_24h_pct",
    )
)
_Number = str | int | None


class _Price(msgspec.Struct):
    """The wire shape the fast path accepts, type-checked by msgspec in C (strict: no bool for
    int, no float for a decimal, no null for a required string; unknown fields ignored like
    the models do). Anything else fails to decode and goes to the models."""

    type: Literal["price"]
    kind: Literal["trade", "quote", "ticker", "aggregate"]  # consolidated: slow path
    event_id: str
    event_time: str
    received_at: str
    source: str
    symbol: str
    base: str
    quote: str
    schema_version: int = 1
    revision: int = 0
    side: Literal["buy", "sell"] | None = None
    contributors: list[Any] | None = None
    asset_id: str | None = None
    native_symbol: str | None = None
    trade_id: str | None = None
    price: _Number = None
    size: _Number = None
    bid: _Number = None
    bid_size: _Number = None
    ask: _Number = None
    ask_size: _Number = None
    volume_24h: _Number = None
    quote_volume_24h: _Number = None
    market_cap: _Number = None
    change_24h_pct: _Number = None


_decode = msgspec.json.Decoder(_Price).decode
_DecodeError = msgspec.DecodeError
_fromiso = datetime.fromisoformat  # Python 3.11 reads "Z"
_plain = limits.plain_decimal_ok
_checked_identity: set[tuple[str | None, ...]] = set()
_trade_id = re.compile(limits.TRADE_ID_PATTERN.replace("$", r"\Z")).match
_EARLIEST = limits.EARLIEST_EVENT_TIME
_MINUS_100 = Decimal(-100)
# The canonical wire timestamp (what ``UtcDatetime`` serialises): reused as the COPY text as is.
_canonical_ts = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z\Z"
).match
_special = re.compile(r"[\\\t\n\r]").search

PriceEntry = tuple[Row, str]


def _num(v: str | int | None) -> str | None:
    """A size's text (zero or more, within the digit limits), or raise ValueError when the
    models must decide (they accept or name what is wrong)."""
    if v is None:
        return None
    text = str(v) if isinstance(v, int) else v  # never a bool: the Struct refuses booleans
    if not _plain(text, non_negative=True):
        raise ValueError(v)
    return text


def _pos(v: str | int | None) -> str | None:
    """A price's text (greater than zero), or raise ValueError (see ``_num``)."""
    if v is None:
        return None
    text = str(v) if isinstance(v, int) else v
    if not _plain(text, positive=True):
        raise ValueError(v)
    return text


def _any(v: str | int | None) -> str | None:
    """A signed decimal's text (a percent change), or raise ValueError (see ``_num``)."""
    if v is None:
        return None
    text = str(v) if isinstance(v, int) else v
    if not _plain(text) or (text.startswith("-") and Decimal(text) < _MINUS_100):
        raise ValueError(v)
    return text


def _identity_ok(p: _Price) -> bool:
    """Source, symbol, codes, asset id and native symbol meet the contract (cached)."""
    ident = (p.source, p.symbol, p.base, p.quote, p.asset_id, p.native_symbol)
    if ident in _checked_identity:
        return True
    try:
        limits.check_source(p.source)
        limits.check_symbol(p.symbol)
        limits.check_code(p.base)
        limits.check_code(p.quote)
        if p.symbol != f"{p.base}-{p.quote}":
            return False
        if p.asset_id is not None:
            limits.check_identifier(p.asset_id)
        if p.native_symbol is not None:
            limits.check_display(p.native_symbol)
    except ValueError:
        return False
    if len(_checked_identity) < 50_000:
        _checked_identity.add(ident)
    return True


def price_entry_from_json(value: bytes) -> PriceEntry | None:
    """The ``prices`` row and its text COPY line for a canonical trade/quote/ticker/aggregate
    event, or ``None`` when the fast path is unsure (then decode with the models).

    In the row, timestamps are UTC ``datetime`` objects (keys, reduction and instruments need
    them) and decimal columns hold the validated number text, not ``Decimal``: the line is what
    PostgreSQL receives. Written flat on purpose: this runs once per price record.
    """
    try:
        p = _decode(value)
        revision = p.revision
        if revision < 0 or (p.contributors is not None and p.contributors != []):
            return None
        if p.schema_version != 1 or not _identity_ok(p):
            return None
        eid, tid = p.event_id, p.trade_id
        if len(eid) > limits.MAX_IDENTIFIER_LENGTH or not (eid.isascii() and eid.isprintable()):
            return None
        if " " in eid or not eid or (tid is not None and not _trade_id(tid)):
            return None
        et, ra = p.event_time, p.received_at
        # Only exact ISO-8601 with an offset (anything else, e.g. spaces, goes to the models).
        event_time, received_at = _fromiso(et), _fromiso(ra)
        if event_time.tzinfo is not UTC:
            if event_time.utcoffset() is None:
                return None
            event_time = event_time.astimezone(UTC)
        if received_at.tzinfo is not UTC:
            if received_at.utcoffset() is None:
                return None
            received_at = received_at.astimezone(UTC)
        if event_time < _EARLIEST or event_time - received_at > limits.max_future_skew():
            return None
        price, size = _pos(p.price), _num(p.size)
        if p.kind == "trade" and p.bid is None and p.ask is None and p.volume_24h is None:
            bid = bid_size = ask = ask_size = vol = qvol = cap = chg = None
            if (
                p.bid_size is not None
                or p.ask_size is not None
                or p.quote_volume_24h is not None
                or p.market_cap is not None
                or p.change_24h_pct is not None
            ):
                bid_size, ask_size = _num(p.bid_size), _num(p.ask_size)
                qvol, cap, chg = (
                    _num(p.quote_volume_24h),
                    _num(p.market_cap),
                    _any(p.change_24h_pct),
                )
        else:
            bid, bid_size, ask, ask_size = (
                _pos(p.bid),
                _num(p.bid_size),
                _pos(p.ask),
                _num(p.ask_size),
            )
            vol, qvol = _num(p.volume_24h), _num(p.quote_volume_24h)
            cap, chg = _num(p.market_cap), _any(p.change_24h_pct)
    except (_DecodeError, ValueError):
        return None
    kind, side = p.kind, p.side
    eid, src, sym, base, quote = p.event_id, p.source, p.symbol, p.base, p.quote
    aid, nat, tid = p.asset_id, p.native_symbol, p.trade_id
    row = (
        event_time,
        eid,
        src,
        kind,
        sym,
        base,
        quote,
        aid,
        nat,
        price,
        size,
        side,
        tid,
        bid,
        bid_size,
        ask,
        ask_size,
        vol,
        qvol,
        cap,
        chg,
        revision,
        received_at,
    )
    if _special(f"{eid}{src}{sym}{base}{quote}{aid or ''}{nat or ''}{tid or ''}") is not None:
        eid, src, sym, base, quote = (
            escape(eid),
            escape(src),
            escape(sym),
            escape(base),
            escape(quote),
        )
        aid = None if aid is None else escape(aid)
        nat = None if nat is None else escape(nat)
        tid = None if tid is None else escape(tid)
    n = NULL
    line = (
        f"{et if _canonical_ts(et) else timestamp(event_time)}\t{eid}\t{src}\t{kind}\t{sym}\t"
        f"{base}\t{quote}\t{n if aid is None else aid}\t{n if nat is None else nat}\t"
        f"{n if price is None else price}\t{n if size is None else size}\t"
        f"{n if side is None else side}\t{n if tid is None else tid}\t"
        f"{n if bid is None else bid}\t{n if bid_size is None else bid_size}\t"
        f"{n if ask is None else ask}\t{n if ask_size is None else ask_size}\t"
        f"{n if vol is None else vol}\t{n if qvol is None else qvol}\t"
        f"{n if cap is None else cap}\t{n if chg is None else chg}\t{revision}\t"
        f"{ra if _canonical_ts(ra) else timestamp(received_at)}\n"
    )
    return row, line


def price_rows_from_json(value: bytes) -> list[tuple[Table, Row]] | None:
    """The fast path's row in the shape and types of ``rows.event_rows`` (decimal text as
    ``Decimal``), for comparing both paths; not used on the hot path."""
    entry = price_entry_from_json(value)
    if entry is None:
        return None
    row = tuple(
        Decimal(v) if c in DECIMAL_COLUMNS and v is not None else v
        for c, v in zip(PRICES.columns, entry[0], strict=True)
    )
    return [(PRICES, row)]
