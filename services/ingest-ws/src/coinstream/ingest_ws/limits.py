"""Venue limits as pure state machines: control-message pacing, connection-attempt windows,
and the reconnect policy (capped jittered backoff that resets after a healthy period).

Every method takes ``now`` (monotonic seconds) and returns how long to wait, so the logic is
tested without sleeping; the connection loop does the sleeping.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

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
