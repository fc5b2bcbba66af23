"""Venue limits as pure state machines: control-message pacing, connection-attempt windows,
the reconnect policy (capped jittered backoff that resets after a healthy period) and the
daily credit budget of venues that bill per message.

Every method takes ``now`` (monotonic seconds) and returns how long to wait, so the logic is
tested without sleeping; the connection loop does the sleeping.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from coinstream.runtime import Backoff


@dataclass
class TokenBucket:
    """``rate`` messages per second with bursts of ``burst``. ``reserve`` books one message."""

    rate: float
    burst: int = 1
    _tokens: float = field(default=0.0, repr=False)
    _at: float | None = field(default=None, repr=False)

    def reserve(self, now: float) -> float:
        """Book one message; return the seconds to wait before sending it."""
        if self._at is None:
            self._tokens, self._at = float(self.burst), now
        elif now > self._at:
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
            self._at = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate


@dataclass
class AttemptWindow:
    """At most ``limit`` connection attempts in any ``window_s`` seconds."""

    limit: int
    window_s: float
    _times: deque[float] = field(default_factory=deque, repr=False)

    def reserve(self, now: float) -> float:
        """Book one attempt; return the seconds to wait before making it."""
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()
        if len(self._times) < self.limit:
            self._times.append(now)
            return 0.0
        at = self._times[-self.limit] + self.window_s  # when the oldest counted one expires
        self._times.append(at)
        return at - now


@dataclass
class ReconnectPolicy:
    """How long to wait before the next connection attempt of one shard.

    The first attempt is immediate. After a failure, ``Backoff`` (capped, full jitter) grows;
    ``healthy()`` marks the connection good (data flowed) and once it stays good for
    ``reset_after`` seconds the next failure starts from the initial delay again. The venue's
    attempt window applies on top (shared by all shards of a venue).
    """

    backoff: Backoff
    attempts: AttemptWindow
    failures: int = 0

    @classmethod
    def build(
        cls, initial: float, maximum: float, reset_after: float, attempts: AttemptWindow
    ) -> ReconnectPolicy:
        return cls(Backoff(initial=initial, maximum=maximum, reset_after=reset_after), attempts)

    def delay_after_failure(self, now: float) -> float:
        """Seconds to wait before reconnecting after a connection ended or failed."""
        self.failures += 1
        delay = self.backoff.next_delay()
        return delay + self.attempts.reserve(now + delay)

    def delay_first(self, now: float) -> float:
        return self.attempts.reserve(now)

    def healthy(self) -> None:
        self.backoff.succeeded()


def next_utc_midnight(now: datetime) -> datetime:
    """The start of the UTC day after ``now``."""
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass
class CreditBudget:
    """Plan credits a metered venue's stream uses per UTC day (pure; the caller gives times).

    ``bill(n, now)`` books ``n`` billable messages at ``per_message`` credits each and says
    whether the day's ``daily`` budget was reached by them (once per day); ``exhausted(now)``
    stays true until the next UTC day. Messages are counted, so the credits are exact
    multiples of ``per_message`` (no float drift over millions of messages).
    """

    per_message: float
    daily: float | None = None
    day: date | None = None
    messages: int = 0  # billable messages today
    total_messages: int = 0  # since start

    def _roll(self, now: datetime) -> None:
        today = now.astimezone(UTC).date()
        if today != self.day:
            self.day, self.messages = today, 0

    @property
    def used(self) -> float:
        """Credits used today (rounded to 9 places: 6 x 0.1 is 0.6, not 0.6000000000000001)."""
        return round(self.messages * self.per_message, 9)

    @property
    def remaining(self) -> float | None:
        return None if self.daily is None else max(0.0, round(self.daily - self.used, 9))

    def _over(self) -> bool:
        # integer comparison: messages allowed per day = floor(daily / per_message)
        return self.daily is not None and self.messages >= self.allowed

    @property
    def allowed(self) -> int:
        """Billable messages the daily budget allows (0 when there is no budget)."""
        if self.daily is None:
            return 0
        return int(round(self.daily / self.per_message, 9))

    def bill(self, n: int, now: datetime) -> bool:
        """Book ``n`` messages; True if they reached the day's budget (the first time)."""
        self._roll(now)
        before = self._over()
        self.messages += n
        self.total_messages += n
        return not before and self._over()

    def exhausted(self, now: datetime) -> bool:
        self._roll(now)
        return self._over()
