"""A provider's request budget: sliding windows (calls per minute, credits per day) plus pauses,
and the parsing of ``Retry-After``. Shared by every service that calls a REST API (ingest-rest
polling, ingest-ws backfilling trade history).

Pure and clock-free: callers pass ``now`` (monotonic seconds). ``reserve(now, cost)`` either
records the spend and returns 0, or returns how long to wait before asking again. A sliding
log guarantees that no window of ``window_s`` seconds ever holds more than ``limit`` units.

Replicas that share one provider budget each run with a share of it (``RateBudget.rescale``):
a lower share applies at once, a higher one only after ``hold_s`` (the units it adds may have
been spent by the replica that held them before), so the replicas' spends in any window never
add up to more than the configured budget.
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
    _holds: list[tuple[float, int]] = field(default_factory=list, repr=False)

    def _expire(self, now: float) -> None:
        while self._log and self._log[0][0] <= now - self.window_s:
            _, cost = self._log.popleft()
            self._used -= cost
        if self._holds:
            self._holds = [(until, units) for until, units in self._holds if until > now]

    def _held(self) -> int:
        return sum(units for _, units in self._holds)

    def wait_time(self, now: float, cost: int) -> float:
        """Seconds until ``cost`` units fit (0 if they fit now)."""
        self._expire(now)
        if self.limit <= 0:  # no share of the budget: ask again later
            return self.window_s
        cost = min(cost, self.limit)
        busy = self._used + self._held()
        if busy + cost <= self.limit:
            return 0.0
        excess = busy + cost - self.limit
        freed = 0
        releases = sorted([(at + self.window_s, spent) for at, spent in self._log] + self._holds)
        for at, units in releases:
            freed += units
            if freed >= excess:
                return max(at - now, 1e-3)
        return self.window_s  # over the limit by more than the log holds: a lowered limit

    def resize(self, now: float, limit: int, hold_s: float = 0.0) -> None:
        """Set the limit to ``limit`` (>= 0). A lower limit applies at once (spends already
        made still count); units added become usable only after ``hold_s`` seconds."""
        limit = max(0, limit)
        if limit > self.limit and hold_s > 0:
            self._holds.append((now + hold_s, limit - self.limit))
        self.limit = limit

    def record(self, now: float, cost: int) -> None:
        cost = min(cost, self.limit)
        self._log.append((now, cost))
        self._used += cost

    def remaining(self, now: float) -> int:
        self._expire(now)
        return max(0, self.limit - self._used - self._held())


@dataclass
class RateBudget:
    """All windows of one provider plus a pause (``Retry-After``) shared by its endpoints."""

    windows: list[SlidingWindow]
    paused_until: float = 0.0
    configured: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.configured:
            self.configured = {w.name: w.limit for w in self.windows}

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

    def rescale(self, now: float, owned: int, total: int, hold_s: float = 0.0) -> None:
        """Run with the share ``owned / total`` of the configured budget (see ``scaled_limit``);
        a grown share becomes usable after ``hold_s`` (``SlidingWindow.resize``)."""
        for window in self.windows:
            window.resize(now, scaled_limit(self.configured[window.name], owned, total), hold_s)

    def limits(self) -> dict[str, int]:
        """The current limit of each window (the configured one times this process's share)."""
        return {w.name: w.limit for w in self.windows}

    def pause_until(self, until: float) -> None:
        """No request before ``until`` (never shortens an existing pause)."""
        self.paused_until = max(self.paused_until, until)

    def paused(self, now: float) -> bool:
        return now < self.paused_until

    def remaining(self, now: float) -> dict[str, int]:
        return {w.name: w.remaining(now) for w in self.windows}


def scaled_limit(limit: int, owned: int, total: int) -> int:
    """``limit * owned / total`` rounded down, so the shares of replicas that own disjoint
    parts of the work never add up to more than ``limit``. ``total == 0`` means no split."""
    if total <= 0:
        return limit
    owned = min(max(owned, 0), total)
    return limit * owned // total


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
