"""The simulated market: a seeded random walk per instrument that emits trades and quotes.

Venue modules subscribe to it and render the same trades in each venue's wire format, so every
venue shows prices consistent with one price process.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal


@dataclass(frozen=True, slots=True)
class Instrument:
    """A canonical instrument (``BTC-USDT``) with its starting price and price increment."""

    symbol: str
    start_price: Decimal
    tick: Decimal
    lot: Decimal = Decimal("0.0001")

    @property
    def base(self) -> str:
        return self.symbol.split("-")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("-")[1]


DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("BTC-USDT", Decimal("67000"), Decimal("0.01"), Decimal("0.00001")),
    Instrument("ETH-USDT", Decimal("3500"), Decimal("0.01"), Decimal("0.0001")),
    Instrument("SOL-USDT", Decimal("150"), Decimal("0.01"), Decimal("0.001")),
    Instrument("PEPE-USDT", Decimal("0.00001234"), Decimal("0.00000001"), Decimal("1")),
    Instrument("BTC-USD", Decimal("67010"), Decimal("0.01"), Decimal("0.00001")),
    Instrument("ETH-USD", Decimal("3501"), Decimal("0.01"), Decimal("0.0001")),
)


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    trade_id: int
    price: Decimal
    size: Decimal
    side: Literal["buy", "sell"]
    time: datetime


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    update_id: int
    bid: Decimal
    bid_size: Decimal
    ask: Decimal
    ask_size: Decimal
    time: datetime


Tick = Trade | Quote


@dataclass
class Subscription:
    """A bounded queue of ticks for one connection. A full queue marks it ``overflowed``."""

    symbols: frozenset[str] | None
    queue: asyncio.Queue[Tick] = field(default_factory=lambda: asyncio.Queue(maxsize=100_000))
    overflowed: bool = False

    async def __aiter__(self) -> AsyncIterator[Tick]:
        while True:
            yield await self.queue.get()


HISTORY = 200_000
"""Trades remembered per instrument for the venues' REST trade-history endpoints."""


class Market:
    """Generates ``rate`` trades per second per instrument (each followed by a quote).

    Every trade is also kept (the last ``history`` per instrument), so the venues' REST
    trade-history endpoints serve the very trades their WebSockets streamed.
    """

    def __init__(
        self,
        instruments: tuple[Instrument, ...] = DEFAULT_INSTRUMENTS,
        rate: float = 5.0,
        seed: int | None = None,
        volatility: float = 0.0005,
        history: int = HISTORY,
    ) -> None:
        self.instruments = {i.symbol: i for i in instruments}
        self.rate = rate
        self.volatility = volatility
        self._rng = random.Random(seed)
        self._prices = {i.symbol: i.start_price for i in instruments}
        self._trade_ids = dict.fromkeys(self.instruments, 1_000_000)
        self._update_ids = dict.fromkeys(self.instruments, 5_000_000)
        self._subs: list[Subscription] = []
        self._paused = False
        self._history: dict[str, deque[Trade]] = {
            s: deque(maxlen=history) for s in self.instruments
        }

    def price(self, symbol: str) -> Decimal:
        return self._prices[symbol]

    def set_price(self, symbol: str, price: Decimal) -> None:
        """Move the market to ``price`` now (tests use this to cross alert thresholds)."""
        if symbol not in self._prices:
            raise KeyError(symbol)
        self._prices[symbol] = price

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
        """Advance one instrument by one trade; publish and return the trade and the quote."""
        inst = self.instruments[symbol]
        now = now or datetime.now(UTC)
        move = Decimal(str(self._rng.gauss(0, self.volatility)))
        price = (self._prices[symbol] * (1 + move)).quantize(inst.tick, ROUND_HALF_EVEN)
        price = max(price, inst.tick)
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
