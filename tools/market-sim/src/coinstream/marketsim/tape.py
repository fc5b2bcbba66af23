"""What the market trades: instruments, the trades and quotes of their tapes, subscriptions.

Plain data shared by the market (``market.py``), the venue views (``venueview.py``) and every
venue plugin.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal


@dataclass(frozen=True, slots=True)
class Instrument:
    """A canonical instrument (``BTC-USDT``) with its price increment and size increment.

    Its price follows the fair value of its base asset (see ``OPENING_VALUES``)."""

    symbol: str
    tick: Decimal
    lot: Decimal = Decimal("0.0001")

    @property
    def base(self) -> str:
        return self.symbol.split("-")[0]

    @property
    def quote(self) -> str:
        return self.symbol.split("-")[1]


DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("BTC-USDT", Decimal("0.01"), Decimal("0.00001")),
    Instrument("ETH-USDT", Decimal("0.01"), Decimal("0.0001")),
    Instrument("SOL-USDT", Decimal("0.01"), Decimal("0.001")),
    Instrument("PEPE-USDT", Decimal("0.00000001"), Decimal("1")),
    Instrument("BTC-USD", Decimal("0.01"), Decimal("0.00001")),
    Instrument("ETH-USD", Decimal("0.01"), Decimal("0.0001")),
)
OPENING_VALUES: Mapping[str, Decimal] = {
    "BTC": Decimal("67000"),
    "ETH": Decimal("3500"),
    "SOL": Decimal("150"),
    "PEPE": Decimal("0.00001234"),
}
"""Each asset's fair value when the market opens, in the reference quote class (USDT)."""


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
