"""Event-time windows (pure), updated in O(1) per event. Out-of-order events land in their
own time slot.

Both windows keep per-slot aggregates (``slot = floor(t / resolution)``), so memory is bounded
by ``span / resolution`` whatever the event rate and the state serialises compactly. What a
rule asks for (the low and high of the window, the volume or volatility of the recent window
and of its baseline) is cached and only recomputed from the slots when the newest slot moves
on (once per ``resolution``); an event inside the current range updates the cache directly.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

_INF = math.inf


class Extremes:
    """Low, high and latest value over the sliding window ``(newest - window, newest]``.

    Slots: ``[lo, hi, last_t, last_v]``."""

    __slots__ = (
        "buckets",
        "first",
        "hi",
        "last",
        "lo",
        "resolution",
        "span",
        "watermark",
        "window",
    )

    def __init__(self, resolution: float, window: float) -> None:
        self.resolution = resolution
        self.window = window
        self.span = window + 2 * resolution
        self.buckets: dict[int, list[float]] = {}
        self.watermark = -_INF
        self.first = self.last = 0
        self.lo, self.hi = _INF, -_INF

    def add(self, t: float, v: float) -> bool:
        """Add an observation; False (ignored) when it is older than the kept span."""
        if t < self.watermark - self.span:
            return False
        res = self.resolution
        s = math.floor(t / res)
        b = self.buckets.get(s)
        if b is None:
            self.buckets[s] = [v, v, t, v]
        else:
            b[0] = min(b[0], v)
            b[1] = max(b[1], v)
            if t >= b[2]:
                b[2], b[3] = t, v
        if t > self.watermark:
            self.watermark = t
            first, last = math.floor((t - self.window) / res), s
            if first != self.first or last != self.last:
                self.first, self.last = first, last
                self._recompute()
                return True
        if self.first <= s <= self.last:
            self.lo = min(self.lo, v)
            self.hi = max(self.hi, v)
        return True

    def _recompute(self) -> None:
        oldest = math.floor((self.watermark - self.span) / self.resolution) - 1
        for old in [k for k in self.buckets if k < oldest]:
            del self.buckets[old]
        lo, hi = _INF, -_INF
        for s, b in self.buckets.items():
            if self.first <= s <= self.last:
                lo = min(lo, b[0])
                hi = max(hi, b[1])
        self.lo, self.hi = lo, hi

    @property
    def latest(self) -> float | None:
        b = self.buckets.get(self.last)
        return None if b is None else b[3]

    def dump(self) -> dict[str, Any]:
        """Shares the slots (encode it at once): msgspec writes the int keys as strings."""
        return {"w": self.watermark if math.isfinite(self.watermark) else None, "b": self.buckets}

    def load(self, data: dict[str, Any]) -> None:
        self.buckets = {int(k): list(v)[:4] for k, v in data.get("b", {}).items()}
        w = data.get("w")
        self.watermark = -_INF if w is None else float(w)
        if self.buckets and math.isfinite(self.watermark):
            self.first = math.floor((self.watermark - self.window) / self.resolution)
            self.last = math.floor(self.watermark / self.resolution)
            self._recompute()


class Activity:
    """Volume and volatility of the recent ``window`` and of the ``baseline`` before it.

    Slots: ``[count, volume, last_t, last_v]``. The recent window is the slots from
    ``slot(newest - window)`` to the newest; the baseline the slots before it back to
    ``slot(newest - window - baseline)``. Volatility is the population standard deviation of
    the log returns between consecutive slots' last values."""

    __slots__ = (
        "base_count",
        "base_first",
        "base_start",
        "base_vol",
        "base_volume",
        "baseline",
        "buckets",
        "closes_stale",
        "cur",
        "first_recent",
        "last_close",
        "r_n",
        "r_s1",
        "r_s2",
        "r_volume",
        "resolution",
        "span",
        "watermark",
        "window",
    )

    def __init__(self, resolution: float, window: float, baseline: float) -> None:
        self.resolution = resolution
        self.window = window
        self.baseline = baseline
        self.span = window + baseline + 2 * resolution
        self.buckets: dict[int, list[float]] = {}
        self.watermark = -_INF
        self.cur = self.first_recent = self.base_start = 0
        self.closes_stale = False
        self.base_count = 0
        self.base_first: int | None = None
        self.base_volume = 0.0
        self.base_vol = math.nan
        self.r_volume = 0.0  # completed recent slots (before ``cur``)
        self.r_s1 = self.r_s2 = 0.0
        self.r_n = 0
        self.last_close: float | None = None

    def add(self, t: float, price: float, volume: float) -> bool:
        if t < self.watermark - self.span:
            return False
        res = self.resolution
        s = math.floor(t / res)
        b = self.buckets.get(s)
        if b is None:
            b = self.buckets[s] = [0, 0.0, t, price]
        elif t >= b[2]:
            b[2], b[3] = t, price
        b[0] += 1
        b[1] += volume
        if t > self.watermark:
            self.watermark = t
            first_recent = math.floor((t - self.window) / res)
            if s != self.cur or first_recent != self.first_recent:
                self.cur, self.first_recent = s, first_recent
                self._recompute()
                return True
        if s < self.cur:  # a late event in a completed slot: update the sums it belongs to
            if s >= self.first_recent:
                self.r_volume += volume
            elif s >= self.base_start:
                self.base_count += 1
                self.base_volume += volume
                if self.base_first is None or s < self.base_first:
                    self.base_first = s
            self.closes_stale = True  # volatility re-reads the slots when asked
        return True

    def _recompute(self) -> None:
        res = self.resolution
        oldest = math.floor((self.watermark - self.span) / res) - 1
        for old in [k for k in self.buckets if k < oldest]:
            del self.buckets[old]
        base_start = self.base_start = math.floor(
            (self.watermark - self.window - self.baseline) / res
        )
        self.closes_stale = False
        base, recent = [], []
        for s in sorted(self.buckets):
            if base_start <= s < self.first_recent:
                base.append((s, self.buckets[s]))
            elif self.first_recent <= s < self.cur:
                recent.append(self.buckets[s])
        self.base_count = int(sum(b[0] for _, b in base))
        self.base_first = base[0][0] if base else None
        self.base_volume = sum(b[1] for _, b in base)
        self.base_vol = _pstdev(_returns([b[3] for _, b in base]))
        returns = _returns([b[3] for b in recent])
        self.r_volume = sum(b[1] for b in recent)
        self.r_n = len(returns)
        self.r_s1 = sum(returns)
        self.r_s2 = sum(r * r for r in returns)
        self.last_close = recent[-1][3] if recent else None

    def volume_ratio(self) -> float | None:
        """Recent volume over the baseline's volume per window (over the part that has data)."""
        if self.base_first is None:
            return None
        cur = self.buckets.get(self.cur)
        now_value = self.r_volume + (cur[1] if cur else 0.0)
        covered = (self.first_recent - self.base_first) * self.resolution
        base_value = self.base_volume * self.window / max(covered, self.window)
        return None if base_value <= 0 else now_value / base_value

    def volatility_ratio(self) -> float | None:
        if self.closes_stale:
            self._recompute()
        cur = self.buckets.get(self.cur)
        n, s1, s2 = self.r_n, self.r_s1, self.r_s2
        if cur is not None and self.last_close is not None and self.last_close > 0:
            r = math.log(cur[3] / self.last_close)
            n, s1, s2 = n + 1, s1 + r, s2 + r * r
        if n < 2 or not self.base_vol > 0:
            return None
        mean = s1 / n
        now_value = math.sqrt(max(0.0, s2 / n - mean * mean))
        return now_value / self.base_vol

    def dump(self) -> dict[str, Any]:
        """Shares the slots (encode it at once): msgspec writes the int keys as strings."""
        return {"w": self.watermark if math.isfinite(self.watermark) else None, "b": self.buckets}

    def load(self, data: dict[str, Any]) -> None:
        self.buckets = {int(k): list(v)[:4] for k, v in data.get("b", {}).items()}
        w = data.get("w")
        self.watermark = -_INF if w is None else float(w)
        if self.buckets and math.isfinite(self.watermark):
            self.cur = math.floor(self.watermark / self.resolution)
            self.first_recent = math.floor((self.watermark - self.window) / self.resolution)
            self._recompute()


def _returns(closes: list[float]) -> list[float]:
    return [math.log(b / a) for a, b in itertools.pairwise(closes) if a > 0 and b > 0]


def _pstdev(values: list[float]) -> float:
    if len(values) < 2:
        return math.nan
    mean = sum(values) / len(values)
    return math.sqrt(max(0.0, sum((v - mean) ** 2 for v in values) / len(values)))
