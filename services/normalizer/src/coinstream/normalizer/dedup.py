"""Bounded-window duplicate filter (first in, first out).

The window never holds back offset commits: every consumer of the canonical topics absorbs
duplicates by ``event_id`` (the sink's natural keys, subscribers' idempotence), so after a
restart the window simply starts empty (it is refilled from the records re-read to rebuild
open candles). It drops the duplicates a live stream carries (a venue's resent trades, two
ingest replicas, a backfill overlapping live data).
"""

from __future__ import annotations

from collections import deque


class DedupWindow:
    """Remembers the last ``capacity`` event keys; ``seen()`` is True for a repeat."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._keys: set[str] = set()
        self._order: deque[str] = deque()

    def __len__(self) -> int:
        return len(self._keys)

    def seen(self, key: str) -> bool:
        """True if ``key`` is in the window; otherwise remember it and return False."""
        if key in self._keys:
            return True
        if self.capacity <= 0:
            return False
        self._keys.add(key)
        self._order.append(key)
        if len(self._order) > self.capacity:
            self._keys.discard(self._order.popleft())
        return False

    def reset(self) -> None:
        self._keys.clear()
        self._order.clear()
