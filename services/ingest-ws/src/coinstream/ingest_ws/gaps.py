"""Sequence gap, duplicate and out-of-order detection, without I/O.

``observe(key, seq, now, at)`` per sequence point. A jump opens a pending gap; late messages
inside it within ``grace_s`` fill it (out of order, not a gap); whatever is still missing when
the grace passes is reported by ``expire(now)``. Ids at or below the last seen id that were not
missing are duplicates.

``prime(key, last, at)`` starts a key where a previous run left off (the checkpoints of the
raw topic), so the first id after a restart is checked for continuity like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NEW = "new"
DUPLICATE = "duplicate"
LATE = "late"  # out of order, filled a pending gap
GAP = "gap"  # new, but opened a gap

MAX_TRACKED_MISSING = 10_000


@dataclass
class Gap:
    """Missing ids ``first..last`` of ``key`` between two received messages."""

    key: str
    first: int
    last: int
    missing: int
    opened: float
    before: float | None  # epoch seconds of the message before the gap
    after: float  # epoch seconds of the message after it
    ids: set[int] = field(default_factory=set, repr=False)


@dataclass
class _State:
    last: int
    at: float | None
    pending: list[Gap] = field(default_factory=list)


class GapTracker:
    """Tracks the highest id per key and the gaps still waiting for late messages."""

    def __init__(self, grace_s: float = 1.0) -> None:
        self.grace_s = grace_s
        self._state: dict[str, _State] = {}
        self.duplicates = 0
        self.late = 0

    def observe(self, key: str, seq: int, now: float, at: float) -> str:
        """``now``: monotonic seconds (for the grace); ``at``: epoch seconds of receipt."""
        state = self._state.get(key)
        if state is None:
            self._state[key] = _State(seq, at)
            return NEW
        if seq == state.last + 1:
            state.last, state.at = seq, at
            return NEW
        if seq > state.last:
            first, last = state.last + 1, seq - 1
            count = last - first + 1
            ids = set(range(first, last + 1)) if count <= MAX_TRACKED_MISSING else set()
            state.pending.append(Gap(key, first, last, count, now, state.at, at, ids))
            state.last, state.at = seq, at
            return GAP
        for gap in state.pending:
            if seq in gap.ids:
                gap.ids.discard(seq)
                gap.missing -= 1
                if not gap.ids:
                    state.pending.remove(gap)
                self.late += 1
                return LATE
        self.duplicates += 1
        return DUPLICATE

    def expire(self, now: float, force: bool = False) -> list[Gap]:
        """Gaps whose grace has passed (all of them if ``force``), with what is still missing."""
        out: list[Gap] = []
        for state in self._state.values():
            if not state.pending:
                continue
            keep = []
            for gap in state.pending:
                if force or now - gap.opened >= self.grace_s:
                    if gap.ids:
                        gap.first, gap.last = min(gap.ids), max(gap.ids)
                    out.append(gap)
                else:
                    keep.append(gap)
            state.pending = keep
        return out

    def prime(self, key: str, last: int, at: float | None) -> None:
        """Continue ``key`` after ``last`` (received at epoch ``at``), unless it is further."""
        state = self._state.get(key)
        if state is None:
            self._state[key] = _State(last, at)
        elif last > state.last:
            state.last, state.at = last, at

    def forget(self, prefix: str) -> None:
        """Drop keys starting with ``prefix`` (counters that restart with a new connection)."""
        for key in [k for k in self._state if k.startswith(prefix)]:
            del self._state[key]

    def last(self, key: str) -> int | None:
        state = self._state.get(key)
        return state.last if state else None
