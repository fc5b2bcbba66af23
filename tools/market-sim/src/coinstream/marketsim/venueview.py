"""A venue's view of the market: the tape's trades and quotes at that venue's prices.

The offsets come from the price model (``fairvalue.venue_offset`` and the market's
divergences); a venue plugin only renders what its view hands it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

from coinstream.marketsim.fairvalue import VenueProfile, venue_offset
from coinstream.marketsim.tape import Quote, Subscription, Tick, Trade

if TYPE_CHECKING:
    from coinstream.marketsim.market import Market


class VenueView:
    """The market as one venue shows it: the tape's trades and quotes at the venue's prices.

    A price is the tape's price times (1 + the venue's offset at that moment, see
    ``fairvalue.venue_offset``) times (1 + any divergence then in effect), on the
    instrument's tick. Offsets depend only on (seed, venue, symbol, time), so a trade renders
    the same in every connection and in the REST history.
    """

    def __init__(self, market: Market, name: str, profile: VenueProfile) -> None:
        self.market = market
        self.name = name
        self.profile = profile

    def factor(self, symbol: str, when: datetime) -> Decimal:
        """The multiplier from the tape's price to this venue's at ``when``."""
        t = when.timestamp()
        offset = venue_offset(self.market.seed, self.name, symbol, self.profile, t)
        diverged = self.market.divergence(self.name, symbol, when)
        return Decimal(repr((1 + offset) * (1 + diverged / 100)))

    def _on_tick(self, symbol: str, value: Decimal, factor: Decimal) -> Decimal:
        tick = self.market.instruments[symbol].tick
        return max((value * factor).quantize(tick, ROUND_HALF_EVEN), tick)

    def trade(self, t: Trade) -> Trade:
        """``t`` as this venue printed it."""
        return replace(t, price=self._on_tick(t.symbol, t.price, self.factor(t.symbol, t.time)))

    def quote(self, q: Quote) -> Quote:
        """``q`` as this venue quoted it (bid below ask, on the tick)."""
        f = self.factor(q.symbol, q.time)
        bid, ask = self._on_tick(q.symbol, q.bid, f), self._on_tick(q.symbol, q.ask, f)
        if ask <= bid:
            ask = bid + self.market.instruments[q.symbol].tick
        return replace(q, bid=bid, ask=ask)

    def render(self, tick: Tick) -> Tick:
        return self.trade(tick) if isinstance(tick, Trade) else self.quote(tick)

    def price(self, symbol: str, now: datetime | None = None) -> Decimal:
        """This venue's current price of ``symbol`` (the tape's last price, rendered now)."""
        now = now or datetime.now(UTC)
        return self._on_tick(symbol, self.market.price(symbol), self.factor(symbol, now))

    @contextlib.contextmanager
    def subscribe(self, symbols: set[str] | None = None) -> Iterator[VenueFeed]:
        """The tape's ticks at this venue's prices, each delivered ``latency_s`` after it
        happened."""
        with self.market.subscribe(symbols) as sub:
            yield VenueFeed(self, sub)


class VenueFeed:
    """``async for tick in feed``: one venue's rendered ticks, paced by its latency."""

    def __init__(self, view: VenueView, sub: Subscription) -> None:
        self.view = view
        self.subscription = sub

    def __aiter__(self) -> VenueFeed:
        return self

    async def __anext__(self) -> Tick:
        tick = await self.subscription.queue.get()
        latency = self.view.profile.latency_s
        wait = tick.time.timestamp() + latency - time.time()
        if wait > 0:
            await asyncio.sleep(min(wait, latency))
        return self.view.render(tick)
