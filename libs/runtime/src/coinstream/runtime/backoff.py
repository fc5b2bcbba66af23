"""Capped, jittered exponential backoff that resets after a healthy period.

The one backoff of every Coinstream retry loop. The exponent is capped where the delay
reaches ``maximum``, so it can run for days (millions of attempts) without overflowing.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """``next_delay()`` grows ``initial * factor**n`` up to ``maximum``, with full jitter.

    Call ``succeeded()`` when a connection became healthy; once it has stayed healthy for
    ``reset_after`` seconds, the next failure starts again from ``initial``.
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 1.0  # 1.0 = full jitter (uniform 0..delay); 0 = none
    reset_after: float = 60.0
    attempts: int = 0
    _healthy_since: float | None = field(default=None, repr=False)

    def delay_for(self, attempt: int) -> float:
        """The (jittered) delay before retry number ``attempt`` (0 = the first retry).

        Pure apart from the jitter: usable by callers that keep their own attempt counts
        (an outbox item persisted across restarts, say).
        """
        delay = self._grown(attempt)
        if self.jitter:
            delay = delay * (1 - self.jitter) + random.uniform(0, delay * self.jitter)
        return delay

    def _grown(self, attempt: int) -> float:
        if self.initial <= 0 or self.maximum <= 0:
            return 0.0
        if self.factor <= 1 or self.maximum <= self.initial:
            return min(self.maximum, self.initial)
        # From this exponent on the delay has certainly reached the maximum: never compute
        # ``factor ** attempt`` beyond it (2.0 ** 1024 overflows a float).
        cap = math.ceil(math.log(self.maximum / self.initial, self.factor)) + 1
        if attempt >= cap:
            return self.maximum
        return min(self.maximum, self.initial * self.factor ** max(0, attempt))

    def next_delay(self) -> float:
        now = time.monotonic()
        if self._healthy_since is not None and now - self._healthy_since >= self.reset_after:
            self.attempts = 0
        self._healthy_since = None
        delay = self.delay_for(self.attempts)
        self.attempts += 1
        return delay

    def succeeded(self) -> None:
        if self._healthy_since is None:
            self._healthy_since = time.monotonic()

    def reset(self) -> None:
        self.attempts = 0
        self._healthy_since = None
