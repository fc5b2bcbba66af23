"""Event-time bucket windows (pure). Out-of-order events land in their own bucket.

A window keeps per-slot aggregates (``slot = floor(t / resolution)``) so memory is bounded by
``span / resolution`` whatever the event rate, and so the state serialises compactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Bucket:
    lo: float
    hi: float
    last_t: float
    last_v: float
    count: int = 0
    volume: float = 0.0

    def dump(self) -> list[float]:
        return [self.lo, self.hi, self.last_t, self.last_v, self.count, self.volume]

    @classmethod
    def load(cls, data: list[float]) -> Bucket:
        lo, hi, last_t, last_v, count, volume = data
        return cls(lo, hi, last_t, last_v, int(count), volume)


@dataclass
class BucketWindow:
    """Aggregates by time slot; keeps ``span`` seconds behind the newest event time."""

    resolution: float
    span: float
    buckets: dict[int, Bucket] = field(default_factory=dict)
    watermark: float = -math.inf

    def slot(self, t: float) -> int:
        return math.floor(t / self.resolution)

    def add(self, t: float, value: float | None, volume: float = 0.0) -> bool:
        """Add an observation; return False (ignored) when it is older than the kept span."""
        if t < self.watermark - self.span:
            return False
        s = self.slot(t)
        b = self.buckets.get(s)
        if b is None:
            if value is None:
                return False
            b = self.buckets[s] = Bucket(value, value, t, value)
        if value is not None:
            b.lo = min(b.lo, value)
            b.hi = max(b.hi, value)
            if t >= b.last_t:
                b.last_t, b.last_v = t, value
        b.count += 1
        b.volume += volume
        if t > self.watermark:
            self.watermark = t
            oldest = self.slot(t - self.span) - 1
            for old in [k for k in self.buckets if k < oldest]:
                del self.buckets[old]
        return True

    def between(self, start: float, end: float) -> list[tuple[int, Bucket]]:
        """Buckets whose slot overlaps ``(start, end]``, oldest first."""
        first, last = self.slot(start), self.slot(end)
        out = []
        for s in sorted(self.buckets):
            if s < first or s > last:
                continue
            if s == first and (s + 1) * self.resolution <= start:
                continue
            out.append((s, self.buckets[s]))
        return out

    def latest(self) -> Bucket | None:
        if not self.buckets:
            return None
        return self.buckets[max(self.buckets)]

    def dump(self) -> dict[str, Any]:
        return {
            "w": self.watermark if math.isfinite(self.watermark) else None,
            "b": {str(k): b.dump() for k, b in self.buckets.items()},
        }

    def load(self, data: dict[str, Any]) -> None:
        self.watermark = data["w"] if data.get("w") is not None else -math.inf
        self.buckets = {int(k): Bucket.load(v) for k, v in data["b"].items()}
