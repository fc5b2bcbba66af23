"""The simulated market: one fair value per asset, a trade tape per instrument, venue views.

Every instrument of an asset (``BTC-USDT``, ``BTC-USD``) follows the asset's one fair value
(``fairvalue.py``): each trade moves the fair value by a seeded random step and prints at the
fair value times the instrument's quote-class peg basis. The tape (trade ids, sizes, sides,
times) is one per instrument; each venue sees it through its ``VenueView``, which adds the
venue's own basis, slow deviation, jitter, scripted divergence and feed latency. Venue modules
render those views in their wire formats; aggregators quote ``Market.aggregate`` (a delayed,
smoothed fair value). So venues agree to a few basis points, never to the cent, and a
``set_price`` moves every source. The tape's types live in ``tape.py``, venue views in
``venueview.py``; both are importable from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from coinstream.marketsim.fairvalue import (
    AggregatorProfile,
    Divergence,
    Divergences,
    FairValue,
    VenueProfile,
    peg_basis,
)
from coinstream.marketsim.tape import (
    DEFAULT_INSTRUMENTS,
    OPENING_VALUES,
    Instrument,
    Quote,
    Subscription,
    Tick,
    Trade,
)
from coinstream.marketsim.venueview import VenueFeed, VenueView

__all__ = [
    "DEFAULT_INSTRUMENTS",
    "HISTORY",
    "MAX_BACKLOG_S",
    "MAX_BURST",
    "OPENING_VALUES",
    "Instrument",
    "Market",
    "Quote",
    "Subscription",
    "Tick",
    "Trade",
    "VenueFeed",
    "VenueView",
    "plan_burst",
]

HISTORY = 200_000
"""Trades remembered per instrument for the venues' REST trade-history endpoints."""


class Market:
    """Generates ``rate`` trades per second per instrument (each followed by a quote).

    Every trade is also kept (the last ``history`` per instrument), so the venues' REST
    trade-history endpoints serve the very trades their WebSockets streamed.
    ``volatility`` is the standard deviation of the fair value's log return per trade of each
    instrument (1 bp: BTC moves about 1.3% an hour at the demo's 5 trades/s, close to the
    real market). ``aggregator_lag`` scales every aggregator's delay and smoothing (0: they
    quote the fair value at once). The same ``seed`` gives the same trades and the same venue
    offsets.
    """

    def __init__(
        self,
        instruments: tuple[Instrument, ...] = DEFAULT_INSTRUMENTS,
        rate: float = 5.0,
        seed: int | None = None,
        volatility: float = 0.0001,
        history: int = HISTORY,
        opening: Mapping[str, Decimal] = OPENING_VALUES,
        aggregator_lag: float = 1.0,
    ) -> None:
        self.instruments = {i.symbol: i for i in instruments}
        missing = sorted({i.base for i in instruments} - set(opening))
        if missing:
            raise ValueError(f"no opening fair value for {', '.join(missing)}: add it to opening")
        self.rate = rate
        self.volatility = volatility
        self.aggregator_lag = aggregator_lag
        self.seed = seed if seed is not None else random.SystemRandom().getrandbits(63)
        self._rng = random.Random(self.seed)
        t0 = time.time()
        self._fair = {a: FairValue(opening[a], t0) for a in {i.base for i in instruments}}
        self._listed = {a: sum(i.base == a for i in instruments) for a in self._fair}
        self._prices = {i.symbol: self._tape_price(i) for i in instruments}
        self._trade_ids = dict.fromkeys(self.instruments, 1_000_000)
        self._update_ids = dict.fromkeys(self.instruments, 5_000_000)
        self._subs: list[Subscription] = []
        self._paused = False
        self._history: dict[str, deque[Trade]] = {
            s: deque(maxlen=history) for s in self.instruments
        }
        self._venues: dict[str, VenueView] = {}
        self._divergences = Divergences()

    # -- the fair value and the tape ------------------------------------------------------
    def _tape_price(self, inst: Instrument, fair: Decimal | None = None) -> Decimal:
        """The instrument's price at its asset's fair value (or at ``fair``), on its tick."""
        fair = self._fair[inst.base].value if fair is None else fair
        price = (fair * Decimal(repr(1 + peg_basis(inst.quote)))).quantize(
            inst.tick, ROUND_HALF_EVEN
        )
        return max(price, inst.tick)

    def price(self, symbol: str) -> Decimal:
        """The last price of ``symbol`` on the tape (before any venue's offset)."""
        return self._prices[symbol]

    @property
    def assets(self) -> list[str]:
        """The assets with a fair value (``BTC``, ``ETH``, ...)."""
        return sorted(self._fair)

    def fair_value(self, asset: str) -> Decimal:
        """The current fair value of ``asset`` (``BTC``) in the reference quote class."""
        return self._fair[asset].value

    def opening_value(self, asset: str) -> Decimal:
        """The fair value of ``asset`` when the market opened."""
        return self._fair[asset].opening

    def set_price(self, symbol: str, price: Decimal, now: datetime | None = None) -> None:
        """Move the market so that ``symbol`` trades at ``price`` now (tests and the demo use
        this to cross alert thresholds): the asset's fair value moves, so every instrument,
        venue and (after its lag) aggregator of that asset follows."""
        if symbol not in self._prices:
            raise KeyError(symbol)
        inst = self.instruments[symbol]
        fair = price / Decimal(repr(1 + peg_basis(inst.quote)))
        # every price first: a value beyond Decimal's precision raises before anything changes
        prices = {o.symbol: self._tape_price(o, fair) for o in self.instruments.values()
                  if o.base == inst.base}  # fmt: skip
        self._fair[inst.base].set(fair, (now or datetime.now(UTC)).timestamp())
        self._prices.update(prices)
        self._prices[symbol] = price

    def aggregate(
        self, asset: str, profile: AggregatorProfile, now: datetime | None = None
    ) -> Decimal:
        """What an aggregator following ``profile`` quotes for ``asset`` now (in USD)."""
        t = (now or datetime.now(UTC)).timestamp()
        return profile.quote(self._fair[asset], t, self.aggregator_lag)

    # -- venues ---------------------------------------------------------------------------
    def venue(self, name: str, profile: VenueProfile | None = None) -> VenueView:
        """The market as venue ``name`` shows it (created on first use, with ``profile``;
        venue plugins register theirs in ``setup``)."""
        view = self._venues.get(name)
        if view is None:
            view = self._venues[name] = VenueView(self, name, profile or VenueProfile())
        return view

    @property
    def venues(self) -> list[str]:
        return sorted(self._venues)

    def diverge(
        self,
        venue: str,
        percent: float | None,
        symbol: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Move ``venue``'s prices (of ``symbol`` only, if given) ``percent`` away from the
        market from now on; ``None`` or 0 ends it. Raises KeyError for an unknown venue or
        symbol, ValueError for a percent of -100 or below."""
        if venue not in self._venues:
            raise KeyError(venue)
        if symbol is not None and symbol not in self.instruments:
            raise KeyError(symbol)
        t = (now or datetime.now(UTC)).timestamp()
        self._divergences.set(venue, percent, t, symbol)

    def divergences(self, now: datetime | None = None) -> list[Divergence]:
        """The divergences in effect now."""
        return self._divergences.active((now or datetime.now(UTC)).timestamp())

    def divergence(self, venue: str, symbol: str, when: datetime) -> float:
        """The percent ``venue``'s ``symbol`` was diverged by at ``when``."""
        return self._divergences.percent(venue, symbol, when.timestamp())

    # -- running --------------------------------------------------------------------------
    def pause(self, paused: bool = True) -> None:
        self._paused = paused

    def history(self, symbol: str) -> Sequence[Trade]:
        """The remembered trades of ``symbol``, oldest first (ids are contiguous)."""
        return self._history[symbol]

    def trades_from(self, symbol: str, from_id: int, limit: int) -> list[Trade]:
        """Up to ``limit`` remembered trades with id >= ``from_id``, oldest first."""
        trades = self._history[symbol]
        if not trades:
            return []
        start = max(0, from_id - trades[0].trade_id)
        return [trades[i] for i in range(start, min(len(trades), start + limit))]

    def trades_between(
        self, symbol: str, start: datetime, end: datetime, limit: int
    ) -> list[Trade]:
        """Up to ``limit`` remembered trades with ``start <= time < end``, NEWEST first (the
        order Coinbase's market-trades endpoint uses)."""
        out: list[Trade] = []
        for t in reversed(self._history[symbol]):
            if t.time < start:
                break
            if t.time < end:
                out.append(t)
                if len(out) >= limit:
                    break
        return out

    @contextlib.contextmanager
    def subscribe(self, symbols: set[str] | None = None) -> Iterator[Subscription]:
        """The tape's ticks as they happen (venues subscribe through their ``VenueView``)."""
        sub = Subscription(frozenset(symbols) if symbols is not None else None)
        self._subs.append(sub)
        try:
            yield sub
        finally:
            self._subs.remove(sub)

    def _publish(self, tick: Tick) -> None:
        for sub in self._subs:
            if sub.symbols is None or tick.symbol in sub.symbols:
                try:
                    sub.queue.put_nowait(tick)
                except asyncio.QueueFull:
                    sub.overflowed = True

    def step(self, symbol: str, now: datetime | None = None) -> tuple[Trade, Quote]:
        """Advance one instrument by one trade; publish and return the trade and the quote.

        The trade moves its asset's fair value (by ``volatility`` per trade of each instrument,
        shared among the asset's instruments) and prints at the instrument's tape price."""
        inst = self.instruments[symbol]
        now = now or datetime.now(UTC)
        step_sd = self.volatility / math.sqrt(self._listed[inst.base])
        self._fair[inst.base].move(self._rng.gauss(0, step_sd), now.timestamp())
        price = self._tape_price(inst)
        self._prices[symbol] = price
        self._trade_ids[symbol] += 1
        size = (inst.lot * self._rng.randint(1, 5000)).quantize(inst.lot)
        side: Literal["buy", "sell"] = "buy" if self._rng.random() < 0.5 else "sell"
        trade = Trade(symbol, self._trade_ids[symbol], price, size, side, now)
        self._history[symbol].append(trade)
        self._update_ids[symbol] += 1
        spread = max(inst.tick, (price * Decimal("0.0001")).quantize(inst.tick))
        quote = Quote(
            symbol,
            self._update_ids[symbol],
            price - spread,
            size * 3,
            price + spread,
            size * 2,
            now,
        )
        self._publish(trade)
        self._publish(quote)
        return trade, quote

    async def run(self) -> None:
        """Emit ticks forever at ``rate`` trades per instrument per second (round robin).

        Each wake-up generates the trades that fell due since the previous one, at most
        ``MAX_BURST``, then always yields to the event loop: at high rates the market runs in
        bounded bursts instead of starving the servers that share its loop. Falling more than
        ``MAX_BACKLOG_S`` behind (a slow machine) drops the excess instead of bursting to catch up.
        """
        if self.rate <= 0:
            await asyncio.Event().wait()
        per_s = self.rate * len(self.instruments)
        loop = asyncio.get_running_loop()
        symbols = list(self.instruments)
        i = 0
        owed = 1.0  # the first trade is due at once
        last = loop.time()
        while True:
            now = loop.time()
            count, owed = plan_burst(owed, now - last, per_s)
            last = now
            if self._paused:
                owed = 0.0
            else:
                for _ in range(count):
                    self.step(symbols[i % len(symbols)])
                    i += 1
            await asyncio.sleep(0 if owed >= 1 else (1 - owed) / per_s)


MAX_BURST = 256
"""Trades generated per wake-up at most; then the event loop gets its turn."""
MAX_BACKLOG_S = 1.0
"""At most this many seconds of trades are owed; beyond it they are skipped, not burst."""


def plan_burst(
    owed: float,
    elapsed_s: float,
    per_s: float,
    max_burst: int = MAX_BURST,
    max_backlog_s: float = MAX_BACKLOG_S,
) -> tuple[int, float]:
    """(trades to generate now, trades still owed after them) for one wake-up of ``run``.

    ``owed`` carries fractions (and whatever the burst limit held back) between wake-ups.
    """
    owed = min(owed + max(0.0, elapsed_s) * per_s, max(1.0, per_s * max_backlog_s))
    count = min(int(owed), max_burst)
    return count, owed - count
