"""Bounded hand-over from the WebSocket readers to Kafka.

Envelopes are grouped per partition into producer batches (``create_batch``/``send_batch``),
with the partition chosen by Kafka's default murmur2 partitioner on the key, exactly as
``send()`` would choose it: several times cheaper per record than ``send()``.

Readers call ``offer()``, which never waits: when the buffer is full the envelope is dropped,
counted, and reported as a ``gap`` feed-status event once space frees up. A slow or absent
broker therefore never stops a reader, so pings keep being answered. Feed-status events have
their own small queue and go first.

No envelope is lost without a trace: a batch that fails transiently (the broker is down or
slow) goes back to the front of the buffer and is sent again; a batch the broker refuses
for another reason is split and its envelopes sent one by one, and an envelope refused on
its own (or larger than ``KAFKA_MAX_RECORD_BYTES``) is dead-lettered in bounded form with the
reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import logging
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiokafka.partitioner import DefaultPartitioner

from coinstream.ingest_ws import metrics
from coinstream.ingest_ws.checkpoints import CheckpointBook, Marks
from coinstream.runtime import (
    Backoff,
    KafkaProducer,
    OutRecord,
    describe,
    is_transient,
    utc_now,
)
from coinstream.runtime.deadletters import dead_letter_record
from coinstream.schemas import FeedStatusEvent, Topics, deterministic_id

log = logging.getLogger(__name__)

STATUS_QUEUE_MAX = 10_000
KEY_CACHE_MAX = 100_000


class Sink(Protocol):
    """Where envelopes and feed-status events go (Kafka, or a recording file).

    ``marks`` (optional) are the highest sequence ids among the items, per stream key: once
    the broker acknowledges the items, they advance the stream's checkpoint."""

    def offer(self, source: str, key: bytes, value: bytes) -> bool: ...

    def offer_many(
        self, source: str, items: list[tuple[bytes, bytes]], marks: Marks | None = None
    ) -> int: ...

    def offer_status(self, event: FeedStatusEvent) -> None: ...


@dataclass
class _Overflow:
    count: int
    since: Any


class KafkaPublisher:
    """Drains the buffer into a started ``KafkaProducer``; ``aclose()`` drains with a deadline."""

    def __init__(self, producer: KafkaProducer, topics: Topics, max_buffer: int, batch_max: int):
        self._producer = producer
        self._topics = topics
        self._max = max_buffer
        self._batch = batch_max
        # one entry per read: (source, envelopes, their sequence marks, True if sent before)
        self._buf: deque[tuple[str, list[tuple[bytes, bytes]], Marks | None, bool]] = deque()
        self._count = 0  # envelopes in _buf
        self._status: deque[FeedStatusEvent] = deque(maxlen=STATUS_QUEUE_MAX)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._overflow: dict[str, _Overflow] = {}
        self._raw_topic: dict[str, str] = {}
        self.published = 0
        self.raw_sent = 0
        self.errors = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._acked = metrics.PUBLISHED
        self._partitions: dict[str, list[int]] = {}
        self._key_partition: dict[tuple[str, bytes], int] = {}
        self._partitioner = DefaultPartitioner()
        self._open: dict[tuple[str, int], Any] = {}  # per-partition batch being filled
        self._open_items: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
        self._open_marks: dict[tuple[str, int], Marks] = {}
        # A partition with records being sent again after a failure: until they are acked,
        # later acks do not advance checkpoints (they would claim trades still in flight).
        self._retrying: dict[tuple[str, int], int] = {}
        self._open_retried: dict[tuple[str, int], int] = {}
        self.checkpoints: CheckpointBook | None = None  # advanced by acknowledged marks
        self._unacked: dict[tuple[str, int], asyncio.Future[Any]] = {}  # last sent, per partition
        self._single: deque[tuple[str, bytes, bytes]] = deque()  # sent alone after a refusal
        self._letters: deque[OutRecord] = deque()  # dead letters waiting to be sent
        self._max_record = producer.settings.max_record_bytes
        self.dead_letters = 0

    def topic(self, source: str) -> str:
        t = self._raw_topic.get(source)
        if t is None:
            t = self._raw_topic[source] = self._topics.raw(source)
        return t

    # -- reader side (never awaits) -----------------------------------------------------
    def offer(self, source: str, key: bytes, value: bytes) -> bool:
        return self.offer_many(source, [(key, value)]) == 1

    def offer_many(
        self, source: str, items: list[tuple[bytes, bytes]], marks: Marks | None = None
    ) -> int:
        """Take the envelopes of one read (``(key, value)`` pairs) as far as the buffer has room;
        the rest are dropped and counted. Returns how many were taken. When some are dropped
        the read's ``marks`` are too (a checkpoint never claims a dropped trade)."""
        limit = self._max_record
        for key, value in items:
            if len(value) + len(key) > limit:  # rare: too large to produce, dead-letter it
                items = self._too_large(source, items)
                break
        n = len(items)
        room = 0 if self._closing else self._max - self._count
        if room < n:
            self._drop(source, n - max(room, 0))
            if room <= 0:
                return 0
            items = items[:room]
            n = room
            marks = None
        self._buf.append((source, items, marks, False))
        self._count += n
        if not self._wake.is_set():
            self._wake.set()
        return n

    def _too_large(
        self, source: str, items: list[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        keep = []
        topic = self.topic(source)
        for key, value in items:
            size = len(value) + len(key)
            if size <= self._max_record:
                keep.append((key, value))
                continue
            reason = (
                f"envelope of {size} bytes is larger than the {self._max_record} bytes a record "
                "may have (KAFKA_MAX_RECORD_BYTES)"
            )
            self._dead_letter(topic, key, value, reason, "RecordTooLargeError")
        return keep

    def _dead_letter(self, topic: str, key: bytes, value: bytes, reason: str, error: str) -> None:
        self._letters.append(
            dead_letter_record(
                self._producer.settings,
                "ingest-ws",
                value,
                reason=reason,
                error=error,
                origin_topic=topic,
                key=key,
            )
        )
        self.dead_letters += 1
        metrics.DROPPED.labels(topic, "dead_lettered").inc()
        self._wake.set()

    def _drop(self, source: str, count: int) -> None:
        self.dropped += count
        metrics.DROPPED.labels(source, "closing" if self._closing else "buffer_full").inc(count)
        over = self._overflow.get(source)
        if over is None:
            self._overflow[source] = _Overflow(count, utc_now())
        else:
            over.count += count

    def offer_status(self, event: FeedStatusEvent) -> None:
        metrics.FEED_STATUS.labels(event.status).inc()
        self._status.append(event)
        self._wake.set()

    def buffered(self) -> int:
        return self._count

    # -- publishing ------------------------------------------------------------------------
    def _done(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            self.errors += 1
            metrics.PUBLISH_ERRORS.inc()
            self.last_error = "cancelled" if fut.cancelled() else repr(fut.exception())
        else:
            self.published += 1
            self._acked.inc()

    def _report_overflow(self) -> None:
        if not self._overflow or self._count > self._max // 2:
            return
        now = utc_now()
        for source, over in self._overflow.items():
            self.offer_status(
                FeedStatusEvent(
                    event_id=deterministic_id("feed-status", source, "overflow", over.since),
                    event_time=now,
                    received_at=now,
                    source=source,
                    status="gap",
                    window_start=over.since,
                    window_end=now,
                    cause=f"publish buffer full: {over.count} messages dropped",
                    details={"dropped": over.count, "reason": "buffer_full"},
                )
            )
        self._overflow.clear()

    async def _partition(self, topic: str, key: bytes) -> int:
        """The partition Kafka's default (murmur2) partitioner picks for ``key``."""
        cached = self._key_partition.get((topic, key))
        if cached is not None:
            return cached
        parts = self._partitions.get(topic)
        if parts is None:
            found = await self._producer.raw.partitions_for(topic)
            parts = self._partitions[topic] = sorted(found)
        partition: int = self._partitioner(key, parts, parts)
        if len(self._key_partition) < KEY_CACHE_MAX:
            self._key_partition[(topic, key)] = partition
        return partition

    async def _send_batch(
        self, batch: Any, topic: str, partition: int, items: list[tuple[bytes, bytes]]
    ) -> None:
        marks = self._open_marks.pop((topic, partition), None)
        retried = self._open_retried.pop((topic, partition), 0)
        fut = await self._producer.raw.send_batch(batch, topic, partition=partition)
        self._unacked[(topic, partition)] = fut
        fut.add_done_callback(
            functools.partial(
                self._batch_done,
                topic=topic,
                partition=partition,
                items=items,
                marks=marks,
                retried=retried,
            )
        )

    def _batch_done(
        self,
        fut: asyncio.Future[Any],
        *,
        topic: str,
        partition: int,
        items: list[tuple[bytes, bytes]],
        marks: Marks | None,
        retried: int = 0,
    ) -> None:
        count = len(items)
        if fut.cancelled() or fut.exception() is not None:
            exc = None if fut.cancelled() else fut.exception()
            self.errors += count
            metrics.PUBLISH_ERRORS.inc(count)
            self.last_error = "cancelled" if exc is None else repr(exc)
            if exc is None or is_transient(exc):
                # back to the front of the buffer: sent again once the broker is back
                source = self._topics.source_of_raw(topic) or topic
                self._raw_topic.setdefault(source, topic)
                self._buf.appendleft((source, items, marks, True))
                self._count += count
                self._retrying[(topic, partition)] = (
                    self._retrying.get((topic, partition), 0) + count
                )
            else:
                self._single.extend((topic, k, v) for k, v in items)
        else:
            self.published += count
            self._acked.inc(count)
            tp = (topic, partition)
            if retried:
                left = self._retrying.get(tp, 0) - retried
                if left > 0:
                    self._retrying[tp] = left
                else:
                    self._retrying.pop(tp, None)
            if marks and self.checkpoints is not None and tp not in self._retrying:
                meta = fut.result()
                source = self._topics.source_of_raw(topic) or topic
                self.checkpoints.acked(source, marks, meta.partition, meta.offset + count)
        if self._open or self._buf or self._single:
            self._wake.set()  # a held batch may go now

    def _single_done(
        self, fut: asyncio.Future[Any], *, topic: str, key: bytes, value: bytes
    ) -> None:
        """One envelope of a refused batch, sent alone: acked, retried or dead-lettered."""
        exc = None if fut.cancelled() else fut.exception()
        if not fut.cancelled() and exc is None:
            self.published += 1
            self._acked.inc()
        elif exc is None or is_transient(exc):
            self._single.append((topic, key, value))
            self._wake.set()
        else:
            reason = f"the broker refused this envelope: {describe(exc)}"
            self._dead_letter(topic, key, value, reason, type(exc).__name__)

    def _letter_done(self, fut: asyncio.Future[Any], *, letter: OutRecord) -> None:
        exc = None if fut.cancelled() else fut.exception()
        if fut.cancelled() or exc is not None:
            if exc is None or is_transient(exc):
                self._letters.append(letter)  # a dead letter is never dropped
                self._wake.set()
            else:
                log.error("dead letter refused by the broker", extra={"error": repr(exc)})

    async def _send_side_queues(self) -> None:
        """Envelopes of refused batches, one by one, then dead letters."""
        send = self._producer.send
        while self._single:
            topic, key, value = self._single.popleft()
            try:
                fut = await send(topic, value, key=key)
            except Exception as exc:  # refused before sending (e.g. too large for the client)
                if is_transient(exc):
                    self._single.appendleft((topic, key, value))
                    raise
                reason = f"could not be produced: {describe(exc)}"
                self._dead_letter(topic, key, value, reason, type(exc).__name__)
                continue
            fut.add_done_callback(
                functools.partial(self._single_done, topic=topic, key=key, value=value)
            )
        while self._letters:
            letter = self._letters.popleft()
            headers = list(letter[3]) if len(letter) == 4 else []  # type: ignore[misc]
            try:
                fut = await send(letter[0], letter[2], key=letter[1], headers=headers)
            except Exception:
                self._letters.appendleft(letter)
                raise
            fut.add_done_callback(functools.partial(self._letter_done, letter=letter))

    async def _send_round(self) -> None:
        """Move buffered envelopes into per-partition batches; send the batches that are full,
        and the others only once their partition's previous batch was acknowledged (or when
        closing). So while the broker is busy batches grow (up to ``max_batch_size``) instead of
        queueing as many small requests: the event loop then spends few turns per record."""
        send = self._producer.send
        feed_topic = self._topics.feed_status
        while self._status:
            event = self._status.popleft()
            fut = await send(feed_topic, event.to_json(), key=event.key)
            fut.add_done_callback(self._done)
        if self._single or self._letters:
            await self._send_side_queues()
        raw = self._producer.raw
        batches = self._open
        members = self._open_items
        popleft = self._buf.popleft
        cached = self._key_partition
        n = 0
        while self._buf and n < self._batch:
            source, items, marks, again = popleft()
            self._count -= len(items)
            n += len(items)
            topic = self._raw_topic.get(source) or self.topic(source)
            for key, value in items:
                partition = cached.get((topic, key))
                if partition is None:
                    partition = await self._partition(topic, key)
                tp = (topic, partition)
                batch = batches.get(tp)
                if batch is None:
                    batch = batches[tp] = raw.create_batch()
                    members[tp] = []
                if batch.append(key=key, value=value, timestamp=None) is None:
                    del batches[tp]
                    await self._send_batch(batch, topic, partition, members.pop(tp))
                    batch = batches[tp] = raw.create_batch()
                    members[tp] = []
                    batch.append(key=key, value=value, timestamp=None)  # a first record fits
                members[tp].append((key, value))
                if again:
                    self._open_retried[tp] = self._open_retried.get(tp, 0) + 1
            if marks:  # after the read's records: acked with (or after) the batch holding them
                await self._hold_marks(topic, marks)
        for tp, batch in list(batches.items()):
            previous = self._unacked.get(tp)
            if self._closing or previous is None or previous.done():
                del batches[tp]
                items = members.pop(tp)
                if batch.record_count():
                    await self._send_batch(batch, *tp, items)
        self.raw_sent += n
        metrics.BUFFERED.set(self._count)
        self._report_overflow()

    async def _hold_marks(self, topic: str, marks: Marks) -> None:
        """Attach a read's marks to the batch of their records' partition."""
        for stream, mark in marks.items():
            key = mark[2]
            partition = self._key_partition.get((topic, key))
            if partition is None:
                partition = await self._partition(topic, key)
            held = self._open_marks.setdefault((topic, partition), {})
            previous = held.get(stream)
            if previous is None or mark[0] > previous[0]:
                held[stream] = mark

    async def _run(self) -> None:
        backoff = Backoff(initial=0.2, maximum=5.0)
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._buf or self._status or self._single or self._letters or self._sendable():
                try:
                    await self._send_round()
                    backoff.reset()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # broker trouble: keep buffering, retry shortly
                    self.last_error = repr(exc)
                    delay = backoff.next_delay()
                    log.warning(
                        "kafka send failed; retrying",
                        extra={"error": repr(exc), "retry_in_s": round(delay, 3)},
                    )
                    await asyncio.sleep(delay)
                await asyncio.sleep(0)

    def _sendable(self) -> bool:
        """A held batch may be sent now (its partition's previous batch is done, or closing)."""
        for tp in self._open:
            previous = self._unacked.get(tp)
            if self._closing or previous is None or previous.done():
                return True
        return False

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="kafka-publisher")

    def idle(self) -> bool:
        """Nothing buffered, held or unacknowledged."""
        return not (
            self._buf or self._status or self._open or self._single or self._letters
        ) and all(f.done() for f in self._unacked.values())

    async def flush(self, deadline_s: float) -> bool:
        """Send everything offered so far and wait for its acknowledgements (so the
        checkpoints cover it), without closing. False if ``deadline_s`` passed first."""
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        while not self.idle():
            if loop.time() >= end or self._task is None or self._task.done():
                return False
            self._wake.set()
            await asyncio.sleep(0.02)
        return True

    async def aclose(self, deadline_s: float = 10.0) -> None:
        """Stop accepting, send what is buffered within ``deadline_s``, then flush."""
        self._closing = True
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        while (
            (self._buf or self._status or self._open or self._single or self._letters)
            and loop.time() < end
            and self._task is not None
        ):
            if self._task.done():
                break
            self._wake.set()
            await asyncio.sleep(0.02)
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._buf or self._open:
            held = sum(b.record_count() for b in self._open.values())
            log.error("shutdown deadline: envelopes not sent", extra={"count": self._count + held})
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._producer.flush(), max(0.1, end - loop.time()))


class FileRecorder:
    """Writes each raw envelope as one line of gzip-compressed JSONL (``record`` command)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: gzip.GzipFile | None = gzip.GzipFile(path, "wb")
        self.count = 0

    def offer(self, source: str, key: bytes, value: bytes) -> bool:
        if self._fh is None:
            return False
        self._fh.write(value + b"\n")
        self.count += 1
        return True

    def offer_many(
        self, source: str, items: list[tuple[bytes, bytes]], marks: Marks | None = None
    ) -> int:
        if self._fh is None:
            return 0
        self._fh.write(b"".join(value + b"\n" for _, value in items))
        self.count += len(items)
        return len(items)

    def offer_status(self, event: FeedStatusEvent) -> None:
        metrics.FEED_STATUS.labels(event.status).inc()
        log.info("feed status", extra={"status": event.status, "cause": event.cause})

    def close(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            fh.close()
