"""A per-provider circuit breaker (pure; callers pass monotonic ``now``).

closed --(``threshold`` failures in a row)--> open --(``open_s``)--> half-open: one probe
request; success closes, failure re-opens with the open time doubled (capped at
``max_open_s``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half_open"]
Transition = Literal["circuit_open", "circuit_closed"]

PROBE_WAIT_S = 0.2
"""How long other callers wait while a half-open probe is in flight before asking again."""


@dataclass
class CircuitBreaker:
    threshold: int = 5
    open_s: float = 60.0
    max_open_s: float = 600.0
    state: State = "closed"
    failures: int = 0
    opened_at: float = 0.0
    current_open_s: float = 0.0
    probing: bool = False

    def before_request(self, now: float) -> float:
        """0 if a request may go now (a half-open probe is marked in flight), else the wait."""
        if self.state == "closed":
            return 0.0
        if self.state == "open":
            left = self.opened_at + self.current_open_s - now
            if left > 0:
                return left
            self.state = "half_open"
            self.probing = False
        if self.probing:
            return PROBE_WAIT_S
        self.probing = True
        return 0.0

    def on_success(self, now: float) -> Transition | None:
        was = self.state
        self.state, self.failures, self.probing = "closed", 0, False
        self.current_open_s = 0.0
        return "circuit_closed" if was != "closed" else None

    def on_failure(self, now: float) -> Transition | None:
        self.failures += 1
        if self.state == "half_open":
            self.current_open_s = min(self.max_open_s, self.current_open_s * 2 or self.open_s)
            self.state, self.opened_at, self.probing = "open", now, False
            return None  # still open: no new transition to report
        if self.state == "closed" and self.failures >= self.threshold:
            self.state, self.opened_at, self.current_open_s = "open", now, self.open_s
            return "circuit_open"
        return None

    def release_probe(self) -> None:
        """A probe ended without a verdict (e.g. rate-limited): let another caller probe."""
        self.probing = False
