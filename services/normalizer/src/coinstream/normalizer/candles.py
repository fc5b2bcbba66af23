"""Event-time OHLCV candles per venue and symbol, with a watermark and a grace period.

Pure state machine. Per venue+symbol the watermark is the latest trade time seen, but a trade
moves it at most ``lead`` seconds past the trade's own receipt time: one record dated in the
future (a bad clock, a poisoned feed) cannot push the watermark ahead and make every later
real trade "too late" (the receipt time is recorded in the envelope, so replays agree). A candle
``[open, open + interval)`` is emitted (revision 0) when the watermark reaches its close; a
trade for it that arrives later but within ``grace`` amends it (next revision, same id); when
the watermark passes ``close + grace`` the candle is emitted once more with ``final=True`` and
forgotten. Trades later than that are counted in ``too_late`` and dropped.

Emissions depend only on the order of trades within one venue+symbol (one partition), so
re-reading the same records after a restart re-emits identical (id, revision, content).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import ValidationError

from coinstream.normalizer.values import EPOCH, fit_decimal
from coinstream.schemas import CandleEvent, deterministic_id

log = logging.getLogger(__name__)

TP = tuple[str, int]
CANDLE_SOURCE = "coinstream"


@dataclass(slots=True)
class _Candle:
    open_time: datetime
    close_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    first_time: datetime
    last_time: datetime
    volume: Decimal = Decimal(0)
    quote_volume: Decimal = Decimal(0)
    count: int = 0
    revision: int = -1  # last emitted revision; -1 = not emitted yet
    origins: dict[TP, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Series:
    watermark: datetime
    due: datetime  # the earliest watermark at which some candle must be emitted or finalized
    candles: dict[datetime, _Candle] = field(default_factory=dict)
    current: _Candle | None = None  # the latest open candle (fast path)


class CandleBook:
    """All open candles. ``add()`` returns the candle events a trade causes."""

    def __init__(self, interval_s: int = 60, grace_s: float = 10.0, lead_s: float = 2.0) -> None:
        self.interval = timedelta(seconds=interval_s)
        self.grace = timedelta(seconds=grace_s)
        self.lead = timedelta(seconds=lead_s)
        self.invalid = 0
        self.label = "1m" if interval_s == 60 else f"{interval_s}s"
        self._minute = interval_s == 60
        self._series: dict[tuple[str, str], _Series] = {}
        self.too_late = 0
        self.amended = 0

    def _bucket(self, t: datetime) -> datetime:
        if self._minute:
            return t.replace(second=0, microsecond=0)
        step = self.interval // timedelta(microseconds=1)
        micros = (t - EPOCH) // timedelta(microseconds=1)
        return EPOCH + timedelta(microseconds=micros - micros % step)

    def add(
        self,
        venue: str,
        symbol: str,
        time: datetime,
        price: Decimal,
        size: Decimal,
        received_at: datetime,
        tp: TP = ("", 0),
        offset: int = 0,
        notional: Decimal | None = None,
    ) -> list[CandleEvent]:
        """Account one trade; return the candles to emit (closes, amendments, finals).

        ``notional`` is ``price * size`` when the caller has it already."""
        horizon = received_at + self.lead
        mark = time if time <= horizon else horizon  # how far this trade may move the watermark
        series = self._series.get((venue, symbol))
        if series is None:
            series = self._series[(venue, symbol)] = _Series(watermark=mark, due=mark)
        candle = series.current
        if candle is not None and candle.open_time <= time < candle.close_time:
            # fast path: the latest minute of this series
            if time < candle.first_time:
                candle.first_time, candle.open = time, price
            if time >= candle.last_time:
                candle.last_time, candle.close = time, price
            if price > candle.high:
                candle.high = price
            elif price < candle.low:
                candle.low = price
        else:
            open_time = self._bucket(time)
            close_time = open_time + self.interval
            if close_time + self.grace <= series.watermark:
                self.too_late += 1
                return []
            candle = series.candles.get(open_time)
            if candle is None:
                candle = series.candles[open_time] = _Candle(
                    open_time, close_time, price, price, price, price, time, time
                )
            else:
                if time < candle.first_time:
                    candle.first_time, candle.open = time, price
                if time >= candle.last_time:
                    candle.last_time, candle.close = time, price
                candle.high = max(candle.high, price)
                candle.low = min(candle.low, price)
            if series.current is None or open_time > series.current.open_time:
                series.current = candle
            series.due = min(series.due, close_time)
        candle.volume += size
        candle.quote_volume += price * size if notional is None else notional
        candle.count += 1
        if tp not in candle.origins:
            candle.origins[tp] = offset
        series.watermark = max(series.watermark, mark)
        if candle.revision < 0 and series.watermark < series.due:
            return []  # the usual case: nothing to emit
        out: list[CandleEvent] = []
        if candle.revision >= 0:  # already emitted: a late trade inside the grace period
            self.amended += 1
            self._emit(venue, symbol, candle, received_at, False, out)
        if series.watermark >= series.due:
            self._advance(venue, symbol, series, received_at, out)
        return out

    def _advance(
        self,
        venue: str,
        symbol: str,
        series: _Series,
        received_at: datetime,
        out: list[CandleEvent],
    ) -> None:
        """Emit the closes and finals the watermark has reached; compute the next due time."""
        due: datetime | None = None
        for start in sorted(series.candles):
            c = series.candles[start]
            end = c.close_time
            if end > series.watermark:
                due = end if due is None else min(due, end)
                break
            if end + self.grace <= series.watermark:
                self._emit(venue, symbol, c, received_at, True, out)
                del series.candles[start]
                if series.current is c:
                    series.current = None
                continue
            if c.revision < 0:
                self._emit(venue, symbol, c, received_at, False, out)
            due = end + self.grace if due is None else min(due, end + self.grace)
        series.due = due if due is not None else series.watermark + self.interval

    def _emit(
        self,
        venue: str,
        symbol: str,
        c: _Candle,
        received_at: datetime,
        final: bool,
        out: list[CandleEvent],
    ) -> None:
        """Append the candle's next revision to ``out``. A candle the contract cannot carry
        (sums beyond its digit limits, only possible with absurd in-range trades) is counted
        and skipped, never raised: the trade that closed it is fine."""
        c.revision += 1
        try:
            out.append(self._event(venue, symbol, c, received_at, final))
        except ValidationError as exc:
            self.invalid += 1
            log.warning(
                "candle outside the contract skipped",
                extra={"venue": venue, "symbol": symbol, "error": str(exc)[:300]},
            )

    def _event(
        self, venue: str, symbol: str, c: _Candle, received_at: datetime, final: bool
    ) -> CandleEvent:
        return CandleEvent(
            event_id=deterministic_id("candle", venue, symbol, self.label, c.open_time.isoformat()),
            event_time=c.open_time,
            received_at=received_at,
            source=CANDLE_SOURCE,
            revision=c.revision,
            venue=venue,
            symbol=symbol,
            interval=self.label,
            open_time=c.open_time,
            close_time=c.close_time,
            open=c.open,
            high=c.high,
            low=c.low,
            close=c.close,
            volume=c.volume,
            quote_volume=c.quote_volume,
            vwap=fit_decimal(c.quote_volume / c.volume) if c.volume else c.close,
            trade_count=c.count,
            final=final,
        )

    def floor(self, tp: TP) -> int | None:
        """Oldest offset of ``tp`` that feeds a candle still open (None if none)."""
        offsets = [
            c.origins[tp]
            for s in self._series.values()
            for c in s.candles.values()
            if tp in c.origins
        ]
        return min(offsets) if offsets else None

    def open_candles(self) -> int:
        return sum(len(s.candles) for s in self._series.values())

    def reset(self) -> None:
        self._series.clear()
