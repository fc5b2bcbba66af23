"""Event-time OHLCV candles per venue and symbol, with a watermark and a grace period.

Pure state machine. Per venue+symbol the watermark is the latest trade time seen, but a trade
moves it at most ``lead`` seconds past the trade's own receipt time: one record dated in the
future (a bad clock, a poisoned feed) cannot push the watermark ahead and make every later
real trade "too late" (the receipt time is recorded in the envelope, so replays agree). A candle
``[open, open + interval)`` is emitted (revision 0) when the watermark reaches its close; a
trade for it that arrives later but within ``grace`` amends it (next revision, same id); when
the watermark passes ``close + grace`` the candle is emitted once more with ``final=True``.
A final candle is kept for ``revise_within_s`` after its close: a trade for it that arrives
later still (a trade backfilled from the venue's REST history after a gap) revises it again
(next revision, still final). Candles only revise what this process built: after a restart,
minutes before the first trade re-read (``known_since``) are not rebuilt, so late trades for
them are counted in ``too_late`` and dropped, like trades older than the revision horizon.

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
    known_since: datetime  # open time of the first candle this process built
    candles: dict[datetime, _Candle] = field(default_factory=dict)
    current: _Candle | None = None  # the latest open candle (fast path)
    closed: dict[datetime, _Candle] = field(default_factory=dict)  # final, still revisable


class CandleBook:
    """All open candles. ``add()`` returns the candle events a trade causes."""

    def __init__(
        self,
        interval_s: int = 60,
        grace_s: float = 10.0,
        lead_s: float = 2.0,
        revise_within_s: float = 3600.0,
    ) -> None:
        self.interval = timedelta(seconds=interval_s)
        self.grace = timedelta(seconds=grace_s)
        self.lead = timedelta(seconds=lead_s)
        self.revise_within = timedelta(seconds=revise_within_s)
        self.invalid = 0
        self.revised = 0
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
            series = self._series[(venue, symbol)] = _Series(mark, mark, self._bucket(time))
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
                return self._revise(venue, symbol, series, time, price, size, received_at)
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
                if self.revise_within > timedelta(0):
                    series.closed[start] = c
                if series.current is c:
                    series.current = None
                continue
            if c.revision < 0:
                self._emit(venue, symbol, c, received_at, False, out)
            due = end + self.grace if due is None else min(due, end + self.grace)
        series.due = due if due is not None else series.watermark + self.interval
        if series.closed:
            horizon = series.watermark - self.revise_within
            for start in [t for t in series.closed if t + self.interval < horizon]:
                del series.closed[start]

    def _revise(
        self,
        venue: str,
        symbol: str,
        series: _Series,
        time: datetime,
        price: Decimal,
        size: Decimal,
        received_at: datetime,
    ) -> list[CandleEvent]:
        """A trade for a candle already final: revise it (next revision, still final) while
        it is within ``revise_within_s`` of the watermark and was built by this process."""
        open_time = self._bucket(time)
        close_time = open_time + self.interval
        if open_time < series.known_since or close_time + self.revise_within <= series.watermark:
            self.too_late += 1
            return []
        candle = series.closed.get(open_time)
        if candle is None:  # a minute that had no trade: it is final at once
            candle = _Candle(open_time, close_time, price, price, price, price, time, time)
            series.closed[open_time] = candle
        else:
            if time < candle.first_time:
                candle.first_time, candle.open = time, price
            if time >= candle.last_time:
                candle.last_time, candle.close = time, price
            candle.high = max(candle.high, price)
            candle.low = min(candle.low, price)
        candle.volume += size
        candle.quote_volume += price * size
        candle.count += 1
        self.revised += 1
        out: list[CandleEvent] = []
        self._emit(venue, symbol, candle, received_at, True, out)
        return out

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
