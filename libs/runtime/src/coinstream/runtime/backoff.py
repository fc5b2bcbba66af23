"""Capped, jittered exponential backoff that resets after a healthy period."""

from __future__ import annotations

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

    def next_delay(self) -> float:
        now = time.monotonic()
        if self._healthy_since is not None and now - self._healthy_since >= self.reset_after:
            self.attempts = 0
        self._healthy_since = None
        delay = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        if self.jitter:
            delay = delay * (1 - self.jitter) + random.uniform(0, delay * self.jitter)
        return delay

    def succeeded(self) -> None:
        if self._healthy_since is None:
            self._healthy_since = time.monotonic()

    def reset(self) -> None:
        self.attempts = 0
        self._healthy_since = None
