"""Bounded-window duplicate filter that knows which source offsets it still depends on."""

from __future__ import annotations

from collections import deque

TP = tuple[str, int]


class DedupWindow:
    """Remembers the last ``capacity`` event keys; ``seen()`` is True for a repeat.

    Each remembered key records the source partition and offset it came from, so
    ``floor(tp)`` names the oldest offset a restart must re-read to rebuild this window.
    Eviction is first-in first-out, so per partition the offsets leave in the order they came.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._keys: set[str] = set()
        # Parallel deques of strings and ints: nothing here is tracked by the cyclic GC, which
        # matters with 100k entries (a deque of tuples made every full collection scan them).
        self._order: deque[str] = deque()
        self._order_tp: deque[int] = deque()
        self._tp_index: dict[TP, int] = {}
        self._tps: list[TP] = []
        self._offsets: dict[TP, deque[int]] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def seen(self, key: str, tp: TP, offset: int) -> bool:
        """True if ``key`` is in the window; otherwise remember it and return False."""
        if key in self._keys:
            return True
        if self.capacity <= 0:
            return False
        self._keys.add(key)
        index = self._tp_index.get(tp)
        if index is None:
            index = self._tp_index[tp] = len(self._tps)
            self._tps.append(tp)
        self._order.append(key)
        self._order_tp.append(index)
        offsets = self._offsets.get(tp)
        if offsets is None:
            offsets = self._offsets[tp] = deque()
        offsets.append(offset)
        if len(self._order) > self.capacity:
            self._keys.discard(self._order.popleft())
            old_tp = self._tps[self._order_tp.popleft()]
            old = self._offsets[old_tp]
            old.popleft()
            if not old:
                del self._offsets[old_tp]
        return False

    def floor(self, tp: TP) -> int | None:
        """Oldest source offset of ``tp`` still represented in the window (None if none)."""
        offsets = self._offsets.get(tp)
        return offsets[0] if offsets else None

    def reset(self) -> None:
        self._keys.clear()
        self._order.clear()
        self._order_tp.clear()
        self._tp_index.clear()
        self._tps.clear()
        self._offsets.clear()
