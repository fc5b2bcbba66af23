"""The price input of the evaluators (pure): one small struct per price event.

A ``Tick`` carries what the rules compare, as floats, with the event's own values kept in
``raw`` (the fast reader's wire form or the ``PriceEvent``) for the rare exact comparison of
a price equal to a threshold. It is built once per event, from the contract's fast reader
(``coinstream.schemas.fastcodec``) or, when that defers, from the validated model.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from coinstream.schemas import PriceEvent
from coinstream.schemas.fastcodec import PriceRecord


class Tick(msgspec.Struct, gc=False):
    """One price event as the rules see it (event time ``t`` in epoch seconds)."""

    symbol: str
    base: str
    source: str
    kind: str
    t: float
    price: float | None
    bid: float | None
    ask: float | None
    size: Any  # the size as given (text or Decimal): only volume rules read it (``size_of``)
    raw: Any


def _f(text: str | None) -> float | None:
    return None if text is None else float(text)


def tick_from_record(record: PriceRecord) -> Tick:
    """From the fast reader (decimals are validated text)."""
    w = record.wire
    return Tick(
        w.symbol,
        w.base,
        w.source,
        w.kind,
        record.event_time.timestamp(),
        None if w.price is None else float(w.price),
        None if w.bid is None else float(w.bid),
        None if w.ask is None else float(w.ask),
        w.size,
        w,
    )


def tick_from_event(e: PriceEvent) -> Tick:
    """From the validated model (the slow path)."""
    return Tick(
        e.symbol,
        e.base,
        e.source,
        e.kind,
        e.event_time.timestamp(),
        None if e.price is None else float(e.price),
        None if e.bid is None else float(e.bid),
        None if e.ask is None else float(e.ask),
        e.size,
        e,
    )


def size_of(tick: Tick) -> float | None:
    return None if tick.size is None else float(tick.size)


def price_of(tick: Tick, field: str = "price") -> float | None:
    """The rule's price field, falling back to the mid of bid/ask for quotes."""
    if field == "bid":
        return tick.bid
    if field == "ask":
        return tick.ask
    if field == "price" and tick.price is not None:
        return tick.price
    if tick.bid is not None and tick.ask is not None:
        return (tick.bid + tick.ask) / 2
    return tick.price


def exact_price_of(tick: Tick, field: str = "price") -> Decimal | None:
    """``price_of`` in exact decimals (for a float that equals a threshold)."""

    def d(name: str) -> Decimal | None:
        v = getattr(tick.raw, name)
        return None if v is None else Decimal(v)

    bid, ask, price = d("bid"), d("ask"), d("price")
    if field == "bid":
        return bid
    if field == "ask":
        return ask
    if field == "price" and price is not None:
        return price
    if bid is not None and ask is not None:
        return (bid + ask) / 2
    return price
