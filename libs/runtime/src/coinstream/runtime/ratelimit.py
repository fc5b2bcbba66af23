"""A provider's request budget: sliding windows (calls per minute, credits per day) plus pauses,
and the parsing of ``Retry-After``. Shared by every service that calls a REST API (ingest-rest
polling, ingest-ws backfilling trade history).

Pure and clock-free: callers pass ``now`` (monotonic seconds). ``reserve(now, cost)`` either
records the spend and returns 0, or returns how long to wait before asking again. A sliding
log guarantees that no window of ``window_s`` seconds ever holds more than ``limit`` units.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass
class SlidingWindow:
    """At most ``limit`` units in any ``window_s`` seconds."""

    name: str
    limit: int
    window_s: float
    _log: deque[tuple[float, int]] = field(default_factory=deque, repr=False)
    _used: int = 0

    def _expire(self, now: float) -> None:
        while self._log and self._log[0][0] <= now - self.window_s:
            _, cost = self._log.popleft()
            self._used -= cost

    def wait_time(self, now: float, cost: int) -> float:
        """Seconds until ``cost`` units fit (0 if they fit now)."""
        self._expire(now)
        cost = min(cost, self.limit)
        if self._used + cost <= self.limit:
            return 0.0
        excess = self._used + cost - self.limit
        freed = 0
        for at, spent in self._log:
            freed += spent
            if freed >= excess:
                return max(at + self.window_s - now, 1e-3)
        return self.window_s  # unreachable: the log holds everything used

    def record(self, now: float, cost: int) -> None:
        cost = min(cost, self.limit)
        self._log.append((now, cost))
        self._used += cost

    def remaining(self, now: float) -> int:
        self._expire(now)
        return self.limit - self._used


@dataclass
class RateBudget:
    """All windows of one provider plus a pause (``Retry-After``) shared by its endpoints."""

    windows: list[SlidingWindow]
    paused_until: float = 0.0

    @classmethod
    def per_minute(
        cls,
        calls: int,
        window_s: float = 60.0,
        credits: int | None = None,
        credit_window_s: float = 86_400.0,
    ) -> RateBudget:
        windows = [SlidingWindow("calls", calls, window_s)]
        if credits is not None:
            windows.append(SlidingWindow("credits", credits, credit_window_s))
        return cls(windows)

    def reserve(self, now: float, cost: int = 1) -> float:
        """Spend one call (and ``cost`` credits) now and return 0, or return the wait."""
        wait = self.paused_until - now
        for window in self.windows:
            need = 1 if window.name == "calls" else cost
            wait = max(wait, window.wait_time(now, need))
        if wait > 0:
            return wait
        for window in self.windows:
            window.record(now, 1 if window.name == "calls" else cost)
        return 0.0

    def pause_until(self, until: float) -> None:
        """No request before ``until`` (never shortens an existing pause)."""
        self.paused_until = max(self.paused_until, until)

    def paused(self, now: float) -> bool:
        return now < self.paused_until

    def remaining(self, now: float) -> dict[str, int]:
        return {w.name: w.remaining(now) for w in self.windows}


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or ``x-ratelimit-reset``.

    ``x-ratelimit-reset`` is read as Unix seconds or as ``2006-01-02 15:04:05 -0700`` (the
    format CoinMarketCap's official CLI parses). Returns None when neither header is usable.
    """
    now = now or datetime.now(UTC)
    lower = {k.lower(): v for k, v in headers.items()}
    value = lower.get("retry-after")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
        except (TypeError, ValueError):
            pass
    reset = lower.get("x-ratelimit-reset")
    if reset:
        reset = reset.strip()
        try:
            number = float(reset)
            return max(0.0, number - now.timestamp()) if number > 1e9 else max(0.0, number)
        except ValueError:
            pass
        try:
            when = datetime.strptime(reset, "%Y-%m-%d %H:%M:%S %z")
            return max(0.0, (when - now).total_seconds())
        except ValueError:
            pass
    return None
