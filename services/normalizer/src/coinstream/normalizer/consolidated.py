"""Consolidated price per asset: volume-weighted across venues, without stale venues or outliers.

Pure state machine fed by trades. Instruments whose quotes are equivalent (``USDT`` and
``USDC`` count as ``USD`` by default) are consolidated together, per base asset. At every
``interval`` boundary of event time (per asset) the price over the trailing ``window`` is
emitted as a ``PriceEvent`` of kind ``consolidated`` (``source=coinstream``):

- each instrument (``venue:SYMBOL``) contributes its VWAP over the window;
- an instrument whose last trade is older than ``stale_after`` before the boundary is stale;
- an instrument whose VWAP is more than ``outlier_pct`` % from the median of the others'
  VWAPs is an outlier;
- the consolidated price is the volume-weighted mean of the remaining instruments, and
  ``contributors`` lists them.

Like the candle watermark, a trade advances its asset's interval clock at most ``lead``
seconds past its own receipt time, so one record dated in the future cannot close intervals
early. An interval is computed once the clock is ``grace`` past its end, so venues whose
trades reach this stage a little later (other partitions of the raw topics, other normalizer
replicas) still count; the event's ``received_at`` is the latest receipt among the trades it
covers, so the same trades always give the same event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from statistics import median

from coinstream.normalizer.parsers.common import price as price_event
from coinstream.normalizer.values import EPOCH, fit_decimal
from coinstream.schemas import deterministic_id
from coinstream.schemas.fastprice import FastPrice

log = logging.getLogger(__name__)
TP = tuple[str, int]
SOURCE = "coinstream"


@dataclass(slots=True)
class _Bucket:
    """Trades of one instrument in one interval ``[end - interval, end)``."""

    notional: Decimal
    volume: Decimal
    first_offset: int
    received_at: datetime  # the latest receipt among its trades


@dataclass(slots=True)
class _Instrument:
    # interval end -> aggregate; a window is a run of whole intervals, so per-trade state is
    # not kept (that was most of the cost, and a lot of objects for the cyclic GC)
    buckets: dict[datetime, _Bucket] = field(default_factory=dict)
    tp: TP = ("", 0)
    last_time: datetime = EPOCH


@dataclass(slots=True)
class _Group:
    base: str
    quote: str
    asset_id: str | None
    next_boundary: datetime = EPOCH  # end of the interval being filled (EPOCH: none yet)
    current_start: datetime = EPOCH
    instruments: dict[str, _Instrument] = field(default_factory=dict)
    by_source: dict[tuple[str, str], _Instrument] = field(default_factory=dict)


class Consolidator:
    def __init__(
        self,
        interval_s: float = 10.0,
        window_s: float = 60.0,
        stale_after_s: float = 30.0,
        outlier_pct: Decimal = Decimal(5),
        quote_aliases: dict[str, str] | None = None,
        lead_s: float = 2.0,
        grace_s: float = 0.0,
    ) -> None:
        if window_s < interval_s or (window_s / interval_s) % 1:
            raise ValueError("consolidated window_s must be a whole multiple of interval_s")
        self.interval = timedelta(seconds=interval_s)
        self.lead = timedelta(seconds=lead_s)
        self.grace = timedelta(seconds=grace_s)
        self.window = timedelta(seconds=window_s)
        self.stale_after = timedelta(seconds=stale_after_s)
        self.outlier = Decimal(outlier_pct) / 100
        self.aliases = {"USDT": "USD", "USDC": "USD"} if quote_aliases is None else quote_aliases
        self._groups: dict[tuple[str, str], _Group] = {}
        # (venue, symbol) -> its group and instrument (None until it has traded), checked
        # against (base, quote, asset id) so a changed mapping is routed afresh
        self._routes: dict[
            tuple[str, str], tuple[_Group, _Instrument | None, tuple[str, str, str | None]]
        ] = {}
        self.excluded_stale = 0
        self.excluded_outliers = 0
        self.invalid = 0

    def _ceil(self, t: datetime) -> datetime:
        step = self.interval // timedelta(microseconds=1)
        micros = (t - EPOCH) // timedelta(microseconds=1)
        return EPOCH + timedelta(microseconds=(micros // step + 1) * step)

    def add(
        self,
        venue: str,
        symbol: str,
        base: str,
        quote: str,
        asset_id: str | None,
        time: datetime,
        price: Decimal,
        size: Decimal,
        received_at: datetime,
        tp: TP = ("", 0),
        offset: int = 0,
        notional: Decimal | None = None,
    ) -> list[FastPrice]:
        """Account one trade (``notional`` = ``price * size`` if the caller has it); return
        the consolidated prices of the intervals it closes."""
        route = self._routes.get((venue, symbol))
        if route is None or route[2] != (base, quote, asset_id):
            quote_class = self.aliases.get(quote, quote)
            key = (asset_id or base, quote_class)
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group(base, quote_class, asset_id)
            route = (group, group.by_source.get((venue, symbol)), (base, quote, asset_id))
            self._routes[(venue, symbol)] = route
        group, inst, _ = route
        out: list[FastPrice] = []
        horizon = received_at + self.lead
        clock = time if time <= horizon else horizon  # how far this trade moves the clock
        if group.next_boundary == EPOCH:
            group.next_boundary = self._ceil(clock)
            group.current_start = group.next_boundary - self.interval
        elif clock >= group.next_boundary + self.grace:
            event = self._compute(group, group.next_boundary)
            if event is not None:
                out.append(event)
            group.next_boundary = self._ceil(clock - self.grace)
            group.current_start = group.next_boundary - self.interval
            self._prune(group, group.current_start - self.window)
        if inst is None:
            inst = group.instruments[f"{venue}:{symbol}"] = _Instrument(tp=tp)
            group.by_source[(venue, symbol)] = inst
            self._routes[(venue, symbol)] = (group, inst, route[2])
        end = group.next_boundary
        if not (group.current_start <= time < end):
            end = self._ceil(time)
        if notional is None:
            notional = price * size
        bucket = inst.buckets.get(end)
        if bucket is None:
            inst.buckets[end] = _Bucket(notional, size, offset, received_at)
        else:
            bucket.notional += notional
            bucket.volume += size
            bucket.received_at = max(bucket.received_at, received_at)
        inst.last_time = max(inst.last_time, time)
        return out

    def _prune(self, group: _Group, before: datetime) -> None:
        """Forget intervals that ended at or before ``before``."""
        for inst in group.instruments.values():
            for end in [e for e in inst.buckets if e <= before]:
                del inst.buckets[end]

    def _compute(self, group: _Group, boundary: datetime) -> FastPrice | None:
        start = boundary - self.window
        received_at = EPOCH  # the latest receipt of a trade in the window: a function of them
        vwaps: dict[str, tuple[Decimal, Decimal, Decimal]] = {}  # name -> (vwap, notional, vol)
        for name, inst in group.instruments.items():
            if inst.last_time < boundary - self.stale_after:
                self.excluded_stale += 1
                continue
            notional = volume = Decimal(0)
            for end, b in inst.buckets.items():
                if start < end <= boundary:
                    notional += b.notional
                    volume += b.volume
                    received_at = max(received_at, b.received_at)
            if volume > 0:
                vwaps[name] = (notional / volume, notional, volume)
        if not vwaps:
            return None
        mid = median(v[0] for v in vwaps.values())
        kept = {n: v for n, v in vwaps.items() if mid == 0 or abs(v[0] - mid) / mid <= self.outlier}
        self.excluded_outliers += len(vwaps) - len(kept)
        if not kept:
            return None
        notional = sum((v[1] for v in kept.values()), Decimal(0))
        volume = sum((v[2] for v in kept.values()), Decimal(0))
        symbol = f"{group.base}-{group.quote}"
        event = price_event(
            kind="consolidated",
            source=SOURCE,
            event_id=deterministic_id("consolidated", symbol, group.asset_id, boundary.isoformat()),
            event_time=boundary,
            received_at=received_at,
            symbol=symbol,
            base=group.base,
            quote=group.quote,
            asset_id=group.asset_id,
            native_symbol=None,
            price=fit_decimal(notional / volume),
            size=volume,
            contributors=tuple(sorted(kept)),
        )
        try:
            event.check()
        except ValueError as exc:  # sums beyond the contract: skip this interval, never raise
            self.invalid += 1
            log.warning(
                "consolidated price outside the contract skipped", extra={"error": str(exc)}
            )
            return None
        return event

    def floor(self, tp: TP) -> int | None:
        """Oldest offset of ``tp`` still inside a consolidation window (None if none)."""
        heads = [
            b.first_offset
            for g in self._groups.values()
            for inst in g.instruments.values()
            if inst.tp == tp
            for b in inst.buckets.values()
        ]
        return min(heads) if heads else None

    def reset(self) -> None:
        self._groups.clear()
        self._routes.clear()
