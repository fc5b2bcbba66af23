"""Idle watchdog per stream and per connection, with configured or learned cadence.

A stream's threshold is the configured ``idle_timeout_s[channel]`` if set, otherwise
``factor x`` the exponentially weighted mean interval between its messages, clamped to
``[min_s, max_s]``: a market that is quiet by habit gets a long threshold, a busy one is caught
within seconds. Before a stream has delivered anything it gets ``first_message_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coinstream.ingest_ws.frames import StreamId

ALPHA = 0.2
WARMUP = 3  # intervals before the learned mean is trusted


@dataclass(slots=True)
class Cadence:
    """When something was last seen and how often it usually is.

    ``touch`` is on the hot path, so it only counts; ``settle`` (called by the periodic check)
    folds the messages seen since the previous settle into the mean interval.
    """

    since: float
    last: float | None = None
    mean: float | None = None
    count: int = 0
    stale_since: float | None = None
    window: int = 0  # messages since the last settle
    first: float | None = None  # first message ever
    settled_last: float | None = None  # ``last`` at the previous settle

    def touch(self, now: float, count: int = 1) -> float | None:
        """Record ``count`` messages received at ``now``; return how long it had been idle if it
        was stale (now resumed)."""
        if self.first is None:
            self.first = now
        self.last = now
        self.window += count
        if self.stale_since is not None:
            resumed, self.stale_since = now - self.stale_since, None
            return resumed
        return None

    def settle(self) -> None:
        """Fold the messages counted since the previous settle into the mean interval."""
        if not self.window or self.last is None:
            return
        if self.settled_last is None:
            start, intervals = self.first, self.window - 1
        else:
            start, intervals = self.settled_last, self.window
        self.window = 0
        if intervals <= 0 or start is None:
            return
        interval = max(0.0, self.last - start) / intervals
        if self.mean is None:
            self.mean = interval
        else:
            weight = min(1.0, ALPHA * intervals)
            self.mean = (1 - weight) * self.mean + weight * interval
        self.count += intervals
        self.settled_last = self.last

    def idle(self, now: float) -> float:
        return now - (self.last if self.last is not None else self.since)


@dataclass
class Thresholds:
    min_s: float
    max_s: float
    factor: float
    first_message_s: float
    fixed: dict[str, float] = field(default_factory=dict)

    def for_cadence(self, cadence: Cadence, channel: str | None = None) -> float:
        if channel is not None and channel in self.fixed:
            return self.fixed[channel]
        cadence.settle()
        if cadence.last is None:
            return self.first_message_s
        if cadence.mean is None or cadence.count < WARMUP:
            return self.max_s if cadence.mean is None else max(self.min_s, self.max_s / 2)
        return min(self.max_s, max(self.min_s, self.factor * cadence.mean))


@dataclass
class StaleReport:
    stream: StreamId
    idle_s: float
    threshold_s: float
    last_seen: float | None


class Watchdog:
    """Stale detection for a connection's streams and silence detection for the connection."""

    def __init__(
        self, streams: tuple[StreamId, ...], streams_t: Thresholds, conn_t: Thresholds, now: float
    ) -> None:
        self.streams_t = streams_t
        self.conn_t = conn_t
        self.streams = {s: Cadence(now) for s in streams}
        self.connection = Cadence(now)

    def restart(self, now: float) -> None:
        """A new connection: silence counts from now; learned stream cadences are kept."""
        self.connection = Cadence(now, mean=self.connection.mean, count=self.connection.count)
        for cadence in self.streams.values():
            if cadence.last is None:
                cadence.since = now

    def frame(self, now: float, count: int = 1) -> None:
        self.connection.touch(now, count)

    def touch(self, stream: StreamId, now: float, count: int = 1) -> float | None:
        cadence = self.streams.get(stream)
        if cadence is None:
            return None
        return cadence.touch(now, count)

    def threshold(self, stream: StreamId) -> float:
        return self.streams_t.for_cadence(self.streams[stream], stream[0])

    def check(self, now: float) -> list[StaleReport]:
        """Streams that just became stale (each reported once until it resumes)."""
        out = []
        for stream, cadence in self.streams.items():
            if cadence.stale_since is not None:
                continue
            limit = self.streams_t.for_cadence(cadence, stream[0])
            idle = cadence.idle(now)
            if idle >= limit:
                cadence.stale_since = now - idle
                out.append(StaleReport(stream, idle, limit, cadence.last))
        return out

    def silence_limit(self) -> float:
        c = self.connection
        c.settle()
        if c.mean is None or c.count < WARMUP:
            return self.conn_t.max_s
        return min(self.conn_t.max_s, max(self.conn_t.min_s, self.conn_t.factor * c.mean))

    def silent(self, now: float) -> bool:
        """True when the whole connection has been quiet longer than its learned limit."""
        return self.connection.idle(now) >= self.silence_limit()

    def stale_count(self) -> int:
        return sum(1 for c in self.streams.values() if c.stale_since is not None)
