"""The I/O edge: one ``Shard`` holds one venue connection (websockets) and keeps it alive.

Per shard: connect (respecting the venue's attempt window), subscribe (paced, within the
venue's deadline), read every frame and hand it to the sink without waiting, watch for stale
streams, silence, missing application pongs and connection age, and reconnect with capped
jittered backoff. Rotations (Binance ``serverShutdown``, the 24 h limit) open the new
connection before closing the old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from coinstream.ingest_ws import metrics
from coinstream.ingest_ws.backfill import Backfiller
from coinstream.ingest_ws.checkpoints import CheckpointBook, Marks, Position
from coinstream.ingest_ws.errors import VenueRefused
from coinstream.ingest_ws.frames import (
    CONNECTION_SCOPE,
    DATA,
    ERROR,
    FATAL,
    HEARTBEAT,
    PONG,
    SHUTDOWN,
    UNKNOWN,
    Route,
    StreamId,
)
from coinstream.ingest_ws.gaps import DUPLICATE, LATE, Gap, GapTracker
from coinstream.ingest_ws.limits import (
    AttemptWindow,
    CreditBudget,
    ReconnectPolicy,
    TokenBucket,
    next_utc_midnight,
)
from coinstream.ingest_ws.publisher import Sink
from coinstream.ingest_ws.symbols import env_name
from coinstream.ingest_ws.venues import ShardPlan, VenueProtocol, VenueSettings
from coinstream.ingest_ws.venues.base import Backfill
from coinstream.ingest_ws.watchdog import Thresholds, Watchdog
from coinstream.ingest_ws.wsconn import ChunkConnection
from coinstream.runtime import utc_now
from coinstream.schemas import FeedStatusEvent, deterministic_id
from coinstream.schemas.fastenvelope import (
    ENVELOPE_FORMAT,
    Clock,
    EnvelopeIds,
    EnvelopeParts,
    encode,
)

log = logging.getLogger(__name__)

DOWN, CONNECTING, SUBSCRIBED, RECEIVING = 0, 1, 2, 3
BUDGET_PAUSE = "daily credit budget reached"


def _wall(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class Venue:
    """What the shards of one venue share: protocol, limits, sink, backfill and counters."""

    def __init__(
        self,
        protocol: VenueProtocol,
        sink: Sink,
        watchdog_interval_s: float = 0.5,
        book: CheckpointBook | None = None,
        jobs: Collection[str] | None = None,
    ) -> None:
        """``jobs``: connect only the streams of these jobs (``VenueProtocol.job_keys``);
        None connects every configured stream."""
        self.protocol = protocol
        self.name = protocol.name
        self.settings: VenueSettings = protocol.settings
        self.sink = sink
        self.watchdog_interval_s = watchdog_interval_s
        s = self.settings
        self.control = TokenBucket(s.control_msgs_per_s, s.control_burst)
        self.attempts = AttemptWindow(s.connect_attempts, s.connect_window_s)
        self.clock = Clock()
        self.ids = EnvelopeIds()
        self.envelope_parts = EnvelopeParts(self.name, self.ids)
        self.shards = [Shard(self, plan) for plan in protocol.plan(jobs)]
        self.backfiller = Backfiller(protocol, sink, self.status, book)
        self.frames = 0
        self.counters: dict[str, int] = {}
        self.budget = (
            CreditBudget(s.credits_per_message, s.daily_credit_budget)
            if s.credits_per_message is not None
            else None
        )
        self.paused = asyncio.Event()  # set while the daily credit budget is used up
        if self.budget is not None and self.budget.daily is not None:
            metrics.CREDITS_REMAINING.labels(self.name).set(self.budget.daily)

    def resume(self, positions: dict[str, Position]) -> None:
        """Continue where a previous run left off: every stream's tracker starts after its
        last acknowledged id, and the gaps still open then are backfilled again."""
        for key, pos in positions.items():
            for shard in self.shards:
                shard.gaps.prime(key, pos.last, pos.at)
            symbol = key.partition(":")[2]
            for first, last, start, end in pos.holes:
                self.backfiller.submit(Backfill(key, symbol, first, last, start, end))

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    # -- credits (venues that bill per message) ------------------------------------------------
    def bill(self, messages: int) -> None:
        """Book ``messages`` billable frames; at the daily budget, pause every shard."""
        budget = self.budget
        if budget is None or not messages:
            return
        now = utc_now()
        reached = budget.bill(messages, now)
        metrics.CREDITS_USED.labels(self.name).inc(messages * budget.per_message)
        self.count("billable_messages", messages)
        remaining = budget.remaining
        if remaining is not None:
            metrics.CREDITS_REMAINING.labels(self.name).set(remaining)
        if reached:
            resume = next_utc_midnight(now)
            log.warning(
                "daily credit budget reached; pausing the stream",
                extra={"venue": self.name, "credits": budget.used, "resume_at": str(resume)},
            )
            self.status(
                "rate_limited",
                start=now,
                cause=(
                    f"daily credit budget reached: {budget.used:g} of {budget.daily:g} credits "
                    f"({budget.messages} messages at {budget.per_message:g}); the stream stops "
                    f"until {resume.isoformat()} ({env_name(self.name, 'daily_credit_budget')})"
                ),
                details={
                    "reason": "daily_credit_budget",
                    "credits_used": budget.used,
                    "credit_budget": budget.daily,
                    "messages": budget.messages,
                    "resume_at": resume.isoformat(),
                },
            )
            self.paused.set()

    def budget_pause(self) -> float:
        """Seconds until the credit budget allows data again (0: go ahead)."""
        budget = self.budget
        now = utc_now()
        if budget is None or not budget.exhausted(now):
            self.paused.clear()
            return 0.0
        return max(0.1, (next_utc_midnight(now) - now).total_seconds())

    async def pace_control(self) -> None:
        delay = self.control.reserve(time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)

    def status(
        self,
        status: Any,
        *,
        symbol: str | None = None,
        channel: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        cause: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        now = utc_now()
        event = FeedStatusEvent(
            event_id=deterministic_id(
                "feed-status", self.name, status, symbol, channel, start, end, cause
            ),
            event_time=end or now,
            received_at=now,
            source=self.name,
            status=status,
            symbol=symbol,
            channel=channel,
            window_start=start,
            window_end=end,
            cause=cause,
            details=details or {},
        )
        self.count(f"feed_status_{status}")
        self.sink.offer_status(event)

    def connected_shards(self) -> int:
        return sum(1 for s in self.shards if s.state >= SUBSCRIBED)


@dataclass(eq=False)
class Conn:
    """One open WebSocket connection of a shard."""

    ws: ChunkConnection
    id: str
    opened: float
    got_data: bool = False
    reader: asyncio.Task[None] | None = None
    first_data: asyncio.Event = field(default_factory=asyncio.Event)
    last_frame_wall: float | None = None
    cause: str | None = None  # why we closed it ourselves
    intentional: bool = False
    app_ping_sent: float | None = None
    close_code: int | None = None  # what the venue's close frame said
    close_reason: str = ""
    final: str | None = None  # the venue said not to reconnect (and why)

    async def close(self, cause: str, intentional: bool = False) -> None:
        if self.cause is None:
            self.cause = cause
        self.intentional = self.intentional or intentional
        with contextlib.suppress(Exception):
            await self.ws.close(1000 if intentional else 1001, cause[:120])


class Shard:
    """One connection's worth of streams, kept connected until ``stop`` is set."""

    def __init__(self, venue: Venue, plan: ShardPlan) -> None:
        self.venue = venue
        self.plan = plan
        s = venue.settings
        self.label = str(plan.index)
        self.policy = ReconnectPolicy.build(
            s.backoff_initial_s, s.backoff_max_s, s.backoff_reset_after_s, venue.attempts
        )
        now = time.monotonic()
        self.watchdog = Watchdog(
            plan.streams,
            Thresholds(
                s.stale_min_s,
                s.stale_max_s,
                s.stale_factor,
                s.first_message_timeout_s,
                dict(s.idle_timeout_s),
            ),
            Thresholds(s.silence_min_s, s.silence_max_s, s.stale_factor, s.silence_max_s),
            now,
        )
        self.gaps = GapTracker(s.gap_grace_s)
        self.state = DOWN
        self.active: Conn | None = None
        self.down_since: float | None = None  # wall time of the last frame before an outage
        self.down_cause = ""
        self._rotate = asyncio.Event()
        self._halt = asyncio.Event()  # a fatal frame: close and stop
        self.final: str | None = None  # why this shard stopped for good
        self._successor: Conn | None = None  # the replacement during a handover
        self._rotate_reason = ""
        self.connections = 0
        self.delays: list[float] = []
        self.kind_counts: dict[str, int] = {}  # frames per kind, flushed to metrics by _tick
        self._set_state(DOWN)

    def _set_state(self, state: int) -> None:
        self.state = state
        metrics.CONNECTION_STATE.labels(self.venue.name, self.label).set(state)

    # -- lifecycle ---------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        delay = self.policy.delay_first(time.monotonic())
        while not stop.is_set():
            if delay > 0:
                self.delays.append(delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    break
            pause = self.venue.budget_pause()
            if pause > 0:  # the day's credits are used up: wait for the next UTC day
                self._set_state(DOWN)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
                delay = 0.0
                continue
            try:
                conn = await self._open()
            except Exception as exc:
                metrics.CONNECT_ATTEMPTS.labels(self.venue.name, "failed").inc()
                self._set_state(DOWN)
                log.warning(
                    "connect failed",
                    extra={"venue": self.venue.name, "shard": self.label, "error": repr(exc)},
                )
                self._mark_down(f"connect failed: {exc!r}", time.time())
                final = self._final_refusal(exc)
                if final is not None:
                    self._stop_for_good(final)
                    break
                delay = self.policy.delay_after_failure(time.monotonic())
                continue
            cause = await self._serve(conn, stop)
            self._set_state(DOWN)
            if stop.is_set():
                break
            final = conn.final or self.venue.protocol.final_close(
                conn.close_code, conn.close_reason
            )
            if final is not None:
                self._stop_for_good(final)
                break
            if cause == BUDGET_PAUSE:
                delay = 0.0
                continue
            metrics.RECONNECTS.labels(self.venue.name, cause.split(":")[0][:40]).inc()
            self.venue.count("reconnects")
            delay = self.policy.delay_after_failure(time.monotonic())
            log.warning(
                "connection lost; reconnecting",
                extra={
                    "venue": self.venue.name,
                    "shard": self.label,
                    "cause": cause,
                    "delay_s": round(delay, 3),
                },
            )
        self._set_state(DOWN)

    def _fatal_held(self, ws: ChunkConnection) -> str | None:
        """What the venue said before a connection failed while subscribing (a server that
        refuses the key right after its greeting, then closes): error frames are reported
        like any other, and a frame saying not to reconnect is returned."""
        fatal = None
        for text in ws.held():
            frame = self.venue.protocol.classify(text)
            if frame.kind is FATAL and fatal is None:
                fatal = f"{self.venue.name}: {frame.detail or text[:200]}"
            elif frame.kind is ERROR:
                self.venue.status(
                    "source_error",
                    start=_wall(time.time()),
                    cause=f"venue error: {frame.detail or text[:200]}",
                    details={"frame": text[:500], "while": "subscribing"},
                )
        return fatal

    def _final_refusal(self, exc: Exception) -> str | None:
        """Whether a failed open is the venue saying "never": an HTTP refusal of the key, or a
        close code that means the key or plan is wrong (sent before subscribing finished)."""
        protocol = self.venue.protocol
        if isinstance(exc, VenueRefused):
            return str(exc)
        if isinstance(exc, InvalidStatus):
            return protocol.refused(exc.response.status_code)
        if isinstance(exc, ConnectionClosed) and exc.rcvd is not None:
            return protocol.final_close(exc.rcvd.code, exc.rcvd.reason)
        return None

    def _stop_for_good(self, why: str) -> None:
        """The venue refused us in a way retrying cannot fix (a bad key, a plan without the
        stream, credits used up): say so once, clearly, and do not reconnect."""
        self.final = why
        log.error(
            "venue refused the connection; not reconnecting",
            extra={"venue": self.venue.name, "shard": self.label, "why": why},
        )
        self.venue.status(
            "source_error",
            start=_wall(time.time()),
            cause=f"{why}; the shard stopped and does not reconnect (fix and restart)",
            details={"shard": self.plan.index, "final": True},
        )

    async def _open(self) -> Conn:
        s = self.venue.settings
        self._set_state(CONNECTING)
        ws = await connect(
            self.plan.url,
            additional_headers=dict(self.plan.headers) or None,
            open_timeout=s.open_timeout_s,
            ping_interval=s.ping_interval_s,
            ping_timeout=s.ping_timeout_s,
            close_timeout=2,
            max_size=2**23,
            create_connection=ChunkConnection,
        )
        assert isinstance(ws, ChunkConnection)
        metrics.CONNECT_ATTEMPTS.labels(self.venue.name, "ok").inc()
        conn = Conn(ws, str(uuid.uuid4()), time.monotonic())
        self.connections += 1
        try:
            deadline = time.monotonic() + s.subscribe_deadline_s
            for message in self.plan.subscribe:
                await self.venue.pace_control()
                if time.monotonic() > deadline:
                    log.warning(
                        "subscribing past the venue deadline; lower max_streams_per_connection",
                        extra={"venue": self.venue.name, "shard": self.label},
                    )
                await ws.send(message)
        except BaseException as exc:
            await conn.close("subscribe failed")
            fatal = self._fatal_held(ws)
            if fatal is not None and isinstance(exc, Exception):
                raise VenueRefused(fatal) from exc
            raise
        self._set_state(SUBSCRIBED)
        self.watchdog.restart(time.monotonic())
        log.info(
            "connected",
            extra={"venue": self.venue.name, "shard": self.label, "connection_id": conn.id},
        )
        return conn

    async def _serve(self, conn: Conn, stop: asyncio.Event) -> str:
        """Run ``conn`` (and its successors after rotations) until it is lost or stop is set."""
        self.active = conn
        conn.reader = asyncio.create_task(self._read(conn), name=f"{self.venue.name}-read")
        ticker = asyncio.create_task(self._tick(stop), name=f"{self.venue.name}-watch")
        stop_wait = asyncio.create_task(stop.wait())
        pause_wait = asyncio.create_task(self.venue.paused.wait())
        halt_wait = asyncio.create_task(self._halt.wait())
        try:
            while True:
                rotate_wait = asyncio.create_task(self._rotate.wait())
                assert conn.reader is not None
                await asyncio.wait(
                    {conn.reader, rotate_wait, stop_wait, pause_wait, halt_wait},
                    return_when=asyncio.FIRST_COMPLETED,
                )
                rotate_wait.cancel()
                if stop.is_set():
                    await conn.close("service stopping", intentional=True)
                    await asyncio.gather(conn.reader, return_exceptions=True)
                    return "stopped"
                if self._halt.is_set() or self.venue.paused.is_set():
                    halted = self._halt.is_set()
                    why = conn.final if halted else "daily credit budget reached"
                    self._mark_down(why or "stopped", conn.last_frame_wall or time.time())
                    await conn.close(why or "stopped", intentional=True)
                    await asyncio.gather(conn.reader, return_exceptions=True)
                    return "final" if halted else BUDGET_PAUSE
                if conn.reader.done():
                    return conn.cause or "closed"
                self._rotate.clear()
                new = await self._handover(conn)
                if new is not None:
                    conn = new
        finally:
            self.flush_counts()
            stop_wait.cancel()
            pause_wait.cancel()
            halt_wait.cancel()
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            self.active = None

    async def _handover(self, old: Conn) -> Conn | None:
        reason = self._rotate_reason or "rotation"
        log.info("opening replacement connection", extra={"venue": self.venue.name, "why": reason})
        delay = self.venue.attempts.reserve(time.monotonic())
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            new = await self._open()
        except Exception as exc:
            log.warning(
                "replacement connection failed; keeping the old one",
                extra={"venue": self.venue.name, "error": repr(exc)},
            )
            self._set_state(RECEIVING if old.first_data.is_set() else SUBSCRIBED)
            return None
        new.reader = asyncio.create_task(self._read(new), name=f"{self.venue.name}-read")
        self._successor = new
        first = asyncio.create_task(new.first_data.wait())
        assert old.reader is not None
        await asyncio.wait(
            {first, old.reader, new.reader},
            timeout=self.venue.settings.handover_timeout_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        first.cancel()
        await old.close(f"replaced: {reason}", intentional=True)
        await asyncio.gather(old.reader, return_exceptions=True)
        self._successor = None
        self.active = new
        metrics.HANDOVERS.labels(self.venue.name, reason).inc()
        self.venue.count("handovers")
        return new

    def request_rotation(self, reason: str) -> None:
        if not self._rotate.is_set():
            self._rotate_reason = reason
            self._rotate.set()

    # -- reading -----------------------------------------------------------------------------
    async def _read(self, conn: Conn) -> None:
        """Attach the hot path to the connection and wait until it closes."""
        ws = conn.ws
        try:
            ws.attach(self._consumer(conn))
            await ws.wait_closed()
            rcvd = ws.close_exc.rcvd if ws.close_exc is not None else None
            if rcvd is not None:
                conn.close_code, conn.close_reason = rcvd.code, rcvd.reason
            if conn.cause is None:
                if ws.consumer_error is not None:
                    conn.cause = f"reader error: {ws.consumer_error!r}"
                else:
                    conn.cause = _describe_close(ws.close_exc)
        finally:
            if conn.cause is None:
                conn.cause = _describe_close(None, ws)
            self.gaps.forget(f"{CONNECTION_SCOPE}{conn.id}")
            successor = self._successor
            replaced = successor is not None and successor.first_data.is_set()
            if not conn.intentional and not replaced:
                last = conn.last_frame_wall or time.time()
                self._mark_down(conn.cause, last)

    def _consumer(self, conn: Conn) -> Callable[[list[str]], None]:
        """The per-read callback: every message of one TCP read, handled without awaiting.

        Per read (not per frame): one clock reading (the frames arrived together), one
        watchdog touch per stream, one lag sample, one hand-over of all envelopes to the sink.
        Per frame: the venue's ``fast`` route lookup, the gap tracker for sequenced streams
        only, and the envelope bytes from precomputed parts.
        """
        venue = self.venue
        protocol = venue.protocol
        fast = protocol.fast
        name = venue.name
        clock_now = venue.clock.now
        monotonic = time.monotonic
        watchdog = self.watchdog
        observe = self.gaps.observe
        drop_dups = venue.settings.drop_duplicates
        lag = metrics.LAG.labels(name)
        duplicates = metrics.DUPLICATES.labels(name)
        out_of_order = metrics.OUT_OF_ORDER.labels(name)
        kinds = self.kind_counts
        parts = venue.envelope_parts
        head = parts.head
        tail = parts.tail(conn.id)
        reserve = venue.ids.reserve
        dumps = orjson.dumps
        offer_many = venue.sink.offer_many

        bill = venue.bill if venue.budget is not None else None

        def consume(texts: list[str]) -> None:
            before = kinds.get(DATA, 0)
            wall, received_at = clock_now()
            now = monotonic()
            conn.last_frame_wall = wall
            count = len(texts)
            venue.frames += count
            if conn is self.active:
                watchdog.frame(now, count)
            counter = reserve(count)
            items: list[tuple[bytes, bytes]] = []
            append = items.append
            middles: dict[str, bytes] = {}
            touched: dict[Route, int] = {}
            marks: Marks = {}
            data = 0
            for text in texts:
                hit = fast(text)
                if hit is None:
                    item = self._handle(conn, text, wall, now, received_at, marks)
                    if item is not None:
                        append(item)
                    continue
                route, seq = hit
                data += 1
                if seq is not None:
                    verdict = observe(route.seq_key, seq, now, wall)  # type: ignore[arg-type]
                    if verdict is DUPLICATE:
                        duplicates.inc()
                        venue.count("duplicates")
                        if drop_dups:
                            continue
                    elif verdict is LATE:
                        out_of_order.inc()
                        venue.count("out_of_order")
                    seq_key: str = route.seq_key  # type: ignore[assignment]
                    held = marks.get(seq_key)
                    if held is None or seq > held[0]:
                        marks[seq_key] = (seq, wall, route.key)
                touched[route] = touched.get(route, 0) + 1
                channel = route.channel
                middle = middles.get(channel)
                if middle is None:
                    middle = middles[channel] = parts.middle(channel, received_at)
                counter += 1
                append((route.key, ENVELOPE_FORMAT % (head, counter, middle, dumps(text), tail)))
            if data:
                kinds[DATA] = kinds.get(DATA, 0) + data
                if not conn.got_data:
                    conn.got_data = True
                    self._first_data(conn, wall)
                for route, n in touched.items():
                    if route.stream is not None:
                        resumed = watchdog.touch(route.stream, now, n)
                        if resumed is not None:
                            self._resumed(route.stream, resumed, wall)
                exchange_ms = protocol.classify(texts[-1]).exchange_ms
                if exchange_ms is not None:
                    lag.observe(max(0.0, wall - exchange_ms / 1000))
            if items:
                offer_many(name, items, marks or None)
            if bill is not None:
                bill(kinds.get(DATA, 0) - before)  # metered venues bill data messages

        return consume

    def _handle(
        self, conn: Conn, text: str, wall: float, now: float, received_at: str, marks: Marks
    ) -> tuple[bytes, bytes] | None:
        """Any frame the venue's fast path did not take: classify it fully (per frame)."""
        venue = self.venue
        protocol = venue.protocol
        frame = protocol.classify(text)
        kind = frame.kind
        kinds = self.kind_counts
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind is DATA or kind is HEARTBEAT:
            if not conn.got_data:
                conn.got_data = True
                self._first_data(conn, wall)
            if (
                frame.seq
                and not self._check_seq(conn, frame.seq, now, wall)
                and venue.settings.drop_duplicates
            ):
                return None
            for stream in frame.streams:
                resumed = self.watchdog.touch(stream, now)
                if resumed is not None:
                    self._resumed(stream, resumed, wall)
            if frame.exchange_ms is not None:
                metrics.LAG.labels(venue.name).observe(max(0.0, wall - frame.exchange_ms / 1000))
        elif kind is PONG:
            conn.app_ping_sent = None
            return None
        elif kind is SHUTDOWN:
            self.request_rotation("serverShutdown")
        elif kind is FATAL:
            conn.final = f"{venue.name}: {frame.detail or text[:200]}"
            self._halt.set()
        elif kind is ERROR:
            log.warning(
                "venue error message",
                extra={"venue": venue.name, "detail": frame.detail, "frame": text[:300]},
            )
            venue.status(
                "source_error",
                start=_wall(wall),
                cause=f"venue error: {frame.detail or text[:200]}",
                details={"frame": text[:500], "connection_id": conn.id},
            )
        elif frame.subscriptions is not None:
            metrics.SUBSCRIPTIONS.labels(venue.name, self.label).set(frame.subscriptions)
        elif frame.detail.startswith("system=") and frame.detail != "system=online":
            venue.status(  # e.g. Kraken maintenance / cancel_only
                "source_error",
                start=_wall(wall),
                cause=f"venue status {frame.detail.removeprefix('system=')}",
                details={"connection_id": conn.id},
            )
        elif (kind is UNKNOWN and not text) or (
            frame.seq
            and not self._check_seq(conn, frame.seq, now, wall)
            and venue.settings.drop_duplicates
        ):
            return None
        value = encode(venue.ids.next(), venue.name, frame.channel, received_at, text, conn.id)
        key = protocol.key_for(frame)
        for point, seq in frame.seq:
            if point != CONNECTION_SCOPE:
                held = marks.get(point)
                if held is None or seq > held[0]:
                    marks[point] = (seq, wall, key)
        return key, value

    def _check_seq(
        self, conn: Conn, points: tuple[tuple[str, int], ...], now: float, wall: float
    ) -> bool:
        """Feed the gap tracker; False if every point was a duplicate."""
        fresh = False
        for point, seq in points:
            key = f"{CONNECTION_SCOPE}{conn.id}" if point == CONNECTION_SCOPE else point
            verdict = self.gaps.observe(key, seq, now, wall)
            if verdict == DUPLICATE:
                metrics.DUPLICATES.labels(self.venue.name).inc()
                self.venue.count("duplicates")
                continue
            if verdict == LATE:
                metrics.OUT_OF_ORDER.labels(self.venue.name).inc()
                self.venue.count("out_of_order")
            fresh = True
        return fresh

    def _first_data(self, conn: Conn, wall: float) -> None:
        conn.first_data.set()
        self.policy.healthy()
        if conn is self.active or self.state < RECEIVING:
            self._set_state(RECEIVING)
        if self.down_since is not None:
            start, cause = _wall(self.down_since), self.down_cause
            end = _wall(wall)
            self.down_since = None
            for channel, symbol in self.plan.streams:
                self.venue.status(
                    "disconnected",
                    symbol=symbol,
                    channel=channel,
                    start=start,
                    end=end,
                    cause=cause,
                    details={"shard": self.plan.index, "connection_id": conn.id},
                )
            self.venue.status(
                "connected",
                start=start,
                end=end,
                cause=cause,
                details={"shard": self.plan.index, "connection_id": conn.id},
            )

    def _mark_down(self, cause: str, last_wall: float) -> None:
        if self.down_since is not None:
            return
        self.down_since = last_wall
        self.down_cause = cause
        self.venue.status(
            "disconnected",
            start=_wall(last_wall),
            cause=cause,
            details={"shard": self.plan.index, "streams": len(self.plan.streams)},
        )

    def _resumed(self, stream: StreamId, stale_for: float, wall: float) -> None:
        channel, symbol = stream
        self.venue.status(
            "resumed",
            symbol=symbol,
            channel=channel,
            start=_wall(wall - stale_for),
            end=_wall(wall),
            cause=f"messages again after {stale_for:.1f} s",
        )
        metrics.STALE_STREAMS.labels(self.venue.name).set(self.watchdog.stale_count())

    # -- periodic checks ---------------------------------------------------------------------
    async def _tick(self, stop: asyncio.Event) -> None:
        interval = self.venue.watchdog_interval_s
        s = self.venue.settings
        last_ping = last_tick = time.monotonic()
        skipped = False
        while not stop.is_set():
            await asyncio.sleep(interval)
            now = time.monotonic()
            wall = time.time()
            self.flush_counts()
            # The event loop (or the whole process: SIGSTOP, a VM pause) did not run for a
            # while, so nothing could be read either: judge silence once the reader has had
            # its turn (at most one tick later; never twice in a row).
            stalled = now - last_tick > interval + max(1.0, interval) and not skipped
            last_tick = now
            skipped = stalled
            if stalled:
                log.info("event loop stalled; skipping one watchdog check")
                continue
            for report in self.watchdog.check(now):
                channel, symbol = report.stream
                start = _wall(wall - report.idle_s)
                metrics.STALE_EVENTS.labels(self.venue.name, channel).inc()
                self.venue.status(
                    "stale",
                    symbol=symbol,
                    channel=channel,
                    start=start,
                    cause=(
                        f"no messages for {report.idle_s:.1f} s "
                        f"(threshold {report.threshold_s:.1f} s)"
                    ),
                    details={"threshold_s": round(report.threshold_s, 3)},
                )
            metrics.STALE_STREAMS.labels(self.venue.name).set(self.watchdog.stale_count())
            for gap in self.gaps.expire(now):
                self._report_gap(gap)
            conn = self.active
            if conn is None:
                continue
            if self.watchdog.silent(now):
                limit = self.watchdog.silence_limit()
                await conn.close(f"silent: no frames for {limit:.1f} s")
                continue
            if s.max_connection_age_s is not None and now - conn.opened >= s.max_connection_age_s:
                self.request_rotation("max_connection_age")
            if s.app_ping_interval_s is not None:
                if conn.app_ping_sent is not None and now - conn.app_ping_sent > (
                    s.ping_timeout_s or s.app_ping_interval_s
                ):
                    await conn.close("app pong missing")
                    continue
                if conn.app_ping_sent is None and now - last_ping >= s.app_ping_interval_s:
                    ping = self.venue.protocol.app_ping()
                    if ping is not None:
                        last_ping = now
                        conn.app_ping_sent = now
                        await self.venue.pace_control()
                        with contextlib.suppress(ConnectionClosed):
                            await conn.ws.send(ping)

    def flush_counts(self) -> None:
        """Move the reader's plain frame counters into the Prometheus counters."""
        counts = dict(self.kind_counts)
        self.kind_counts.clear()  # in place: readers hold a reference to this dict
        for kind, count in counts.items():
            metrics.MESSAGES.labels(self.venue.name, kind).inc(count)

    def _report_gap(self, gap: Gap) -> None:
        key = gap.key
        if key.startswith(CONNECTION_SCOPE):
            channel, symbol = None, None
            sequence = "sequence_num"
        else:
            channel, _, symbol_part = key.partition(":")
            symbol = symbol_part or None
            sequence = self.venue.protocol.sequence_name(channel)
        metrics.GAPS.labels(self.venue.name, channel or "*").inc()
        metrics.MISSING.labels(self.venue.name, channel or "*").inc(gap.missing)
        self.venue.count("gaps")
        backfill = "unavailable"
        if symbol is not None and channel is not None:
            job = Backfill(key, symbol, gap.first, gap.last, gap.before, gap.after)
            if self.venue.backfiller.submit(job):
                backfill = "queued"
        self.venue.status(
            "gap",
            symbol=symbol,
            channel=channel,
            start=_wall(gap.before) if gap.before is not None else None,
            end=_wall(gap.after),
            cause=f"{gap.missing} message(s) missing: {sequence} {gap.first}..{gap.last}",
            details={
                "sequence": sequence,
                "first_missing": gap.first,
                "last_missing": gap.last,
                "missing": gap.missing,
                "shard": self.plan.index,
                "gap_id": f"{key}:{gap.first}-{gap.last}",
                "backfill": backfill,
            },
        )


def _describe_close(exc: ConnectionClosed | None, ws: ChunkConnection | None = None) -> str:
    rcvd = exc.rcvd if exc is not None else None
    if exc is not None and rcvd is None and exc.sent is not None and exc.sent.code == 1011:
        return f"closed: {exc.sent.reason or 'keepalive ping timeout'}"
    if rcvd is not None:
        return f"closed by server: code {rcvd.code} {rcvd.reason}".strip()
    if ws is not None and ws.close_code is not None:
        return f"closed: code {ws.close_code} {ws.close_reason or ''}".strip()
    return "closed: connection dropped without close frame"
