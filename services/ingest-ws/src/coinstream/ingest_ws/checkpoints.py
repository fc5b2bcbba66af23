"""Where each stream left off, kept in Kafka so a restart can tell which trades it missed.

Why a compacted topic (``Topics.ingest_checkpoints``) rather than only the raw topic's newest
records: a checkpoint holds the last *acknowledged* id of every sequenced stream (the trade
stream of each venue and symbol), however quiet the stream, in one small record per stream, and
any still-open holes waiting for a backfill. Reading the raw topics alone would depend on how
far back each partition is scanned (an illiquid symbol's last trade may be hours back among
millions of records) and on end offsets the local broker misreports.

Checkpoints advance only with broker acknowledgements (``acked``), so they never claim a trade
that was still in a buffer when the process died. They are written every few seconds, so a
restart also reads the raw topic from each checkpoint's offset to the end: the trades acked
after the last checkpoint (by this or another replica) continue the sequence too. Two replicas
of the same streams therefore never report each other's trades as missing.

Record: key ``<venue>:<stream key>`` (``binance:trade:BTC-USDT``), value JSON
``{"last": id, "at": epoch s, "partition": p, "offset": next offset, "holes": [[a, b], ...]}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from coinstream.runtime import KafkaProducer, KafkaSettings
from coinstream.runtime.kafka import connection_kwargs

log = logging.getLogger(__name__)

Marks = dict[str, tuple[int, float, bytes]]
"""stream key -> (highest sequence id, epoch receipt time, Kafka key of its records)."""
EMPTY_POLLS = 2
"""Consecutive empty polls that mean "read to the end" (end offsets are not trusted)."""


@dataclass
class Position:
    """Where one stream of one venue stands."""

    last: int
    at: float | None = None
    partition: int = -1
    offset: int = -1
    holes: list[tuple[int, int, float | None, float]] = field(default_factory=list)
    """Gaps still being backfilled: (first id, last id, start epoch or None, end epoch)."""

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "last": self.last,
                "at": self.at,
                "partition": self.partition,
                "offset": self.offset,
                "holes": self.holes,
            }
        )

    @classmethod
    def from_json(cls, value: bytes) -> Position:
        doc = orjson.loads(value)
        return cls(
            last=int(doc["last"]),
            at=doc.get("at"),
            partition=int(doc.get("partition", -1)),
            offset=int(doc.get("offset", -1)),
            holes=[
                (int(h[0]), int(h[1]), h[2] if len(h) > 2 else None, h[3] if len(h) > 3 else 0.0)
                for h in doc.get("holes") or ()
            ],
        )


class CheckpointBook:
    """Per venue and stream key: the highest acknowledged id and the open holes (pure)."""

    def __init__(self) -> None:
        self.positions: dict[tuple[str, str], Position] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._keep: Callable[[str, str], bool] | None = None

    def retain(self, keep: Callable[[str, str], bool]) -> None:
        """From now on hold and write only the streams ``keep(venue, key)`` accepts: those of
        the jobs this replica owns. The others are forgotten, so a late acknowledgement of a
        stream that moved to another replica never overwrites its new owner's checkpoint."""
        self._keep = keep
        for pair in [p for p in self.positions if not keep(*p)]:
            del self.positions[pair]
        self._dirty = {p for p in self._dirty if keep(*p)}

    def merge(self, venue: str, key: str, pos: Position) -> None:
        """A position read from Kafka, kept unless this book already holds a newer one."""
        held = self.positions.get((venue, key))
        if held is None or pos.last > held.last:
            self.positions[(venue, key)] = pos

    def acked(self, venue: str, marks: Marks, partition: int, next_offset: int) -> None:
        """Records carrying ``marks`` were acknowledged up to ``next_offset`` of ``partition``."""
        keep = self._keep
        for key, (seq, at, _kafka_key) in marks.items():
            if keep is not None and not keep(venue, key):
                continue  # a stream that moved away while its last records were in flight
            pos = self.positions.get((venue, key))
            if pos is None:
                self.positions[(venue, key)] = Position(seq, at, partition, next_offset)
            elif seq > pos.last:
                pos.last, pos.at, pos.partition, pos.offset = seq, at, partition, next_offset
            else:
                continue
            self._dirty.add((venue, key))

    def open_hole(
        self, venue: str, key: str, first: int, last: int, start: float | None, end: float
    ) -> None:
        if self._keep is not None and not self._keep(venue, key):
            return
        pos = self.positions.setdefault((venue, key), Position(last))
        if all(h[:2] != (first, last) for h in pos.holes):
            pos.holes.append((first, last, start, end))
            self._dirty.add((venue, key))

    def close_hole(self, venue: str, key: str, first: int, last: int) -> None:
        pos = self.positions.get((venue, key))
        if pos is not None:
            kept = [h for h in pos.holes if h[:2] != (first, last)]
            if len(kept) != len(pos.holes):
                pos.holes = kept
                self._dirty.add((venue, key))

    def load(self, venue: str, key: str, pos: Position) -> None:
        """A position read at start-up (not written back unless it changes)."""
        self.positions[(venue, key)] = pos

    def drain(self) -> list[tuple[bytes, bytes]]:
        """(record key, value) of every position changed since the last drain."""
        keep = self._keep
        out = [
            (f"{venue}:{key}".encode(), self.positions[(venue, key)].to_json())
            for venue, key in sorted(self._dirty)
            if (keep is None or keep(venue, key)) and (venue, key) in self.positions
        ]
        self._dirty.clear()
        return out

    def mark_dirty(self, records: Iterable[tuple[bytes, bytes]]) -> None:
        """Records that could not be written: write them next time."""
        for key, _ in records:
            venue, _, stream = key.decode().partition(":")
            if (venue, stream) in self.positions:
                self._dirty.add((venue, stream))


class CheckpointWriter:
    """Writes changed positions every ``interval_s`` (and once more on close)."""

    def __init__(self, producer: KafkaProducer, book: CheckpointBook, interval_s: float) -> None:
        self._producer = producer
        self._book = book
        self._interval = interval_s
        self._topic = producer.settings.topics.ingest_checkpoints
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    async def write(self) -> None:
        records = self._book.drain()
        if not records:
            return
        try:
            futures = [
                await self._producer.send(self._topic, value, key=key) for key, value in records
            ]
            await asyncio.gather(*futures)
            self.written += len(records)
        except Exception as exc:  # the next round writes them again
            self._book.mark_dirty(records)
            log.warning("checkpoints not written; retrying", extra={"error": repr(exc)})

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.write()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="checkpoints")

    async def aclose(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.write(), 5.0)


SeqReader = Callable[[str], tuple[tuple[str, int], ...]]
"""A venue's payload -> its sequence points (``(stream key, id)``), e.g. from ``classify``."""


async def load_positions(
    settings: KafkaSettings, readers: Mapping[str, SeqReader], timeout_s: float = 20.0
) -> dict[str, dict[str, Position]]:
    """venue -> stream key -> where a previous run left off: the checkpoints, advanced by the
    raw records acknowledged after them (read from each checkpoint's offset to the end)."""
    started_ms = int(time.time() * 1000)
    topics = settings.topics
    deadline = time.monotonic() + timeout_s
    out: dict[str, dict[str, Position]] = {v: {} for v in readers}
    for record in await _read_all(settings, [topics.ingest_checkpoints], {}, deadline, None):
        venue, _, key = (record.key or b"").decode(errors="replace").partition(":")
        if venue in out and record.value is not None:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                out[venue][key] = Position.from_json(record.value)
    for venue, read_seq in readers.items():
        positions = out[venue]
        starts: dict[TopicPartition, int] = {}
        raw = topics.raw(venue)
        for pos in positions.values():
            if pos.partition >= 0 and pos.offset >= 0:
                tp = TopicPartition(raw, pos.partition)
                starts[tp] = min(starts.get(tp, pos.offset), pos.offset)
        if not starts:
            continue
        for record in await _read_all(settings, [], starts, deadline, started_ms):
            try:
                env: Any = orjson.loads(record.value)
                points = read_seq(env["payload"])
                at = record.timestamp / 1000
            except (TypeError, ValueError, KeyError):
                continue
            for key, seq in points:
                found = positions.get(key)
                if found is None:
                    positions[key] = Position(seq, at, record.partition, record.offset + 1)
                elif seq > found.last:
                    found.last, found.at = seq, at
    return out


async def _read_all(
    settings: KafkaSettings,
    topics: list[str],
    starts: dict[TopicPartition, int],
    deadline: float,
    before_ms: int | None,
) -> list[Any]:
    """Records of ``topics`` from the beginning (or of ``starts`` from those offsets) until
    the end (``EMPTY_POLLS`` empty polls), records produced after ``before_ms``, or the
    deadline."""
    consumer = AIOKafkaConsumer(
        **connection_kwargs(settings), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    records: list[Any] = []
    try:
        partitions = list(starts)
        for topic in topics:
            for p in sorted(await _partitions(consumer, topic, deadline)):
                partitions.append(TopicPartition(topic, p))
        if not partitions:
            return records
        consumer.assign(partitions)
        for tp in partitions:
            if tp in starts:
                consumer.seek(tp, starts[tp])
        await consumer.seek_to_beginning(*[tp for tp in partitions if tp not in starts])
        empty = 0
        done: set[TopicPartition] = set()
        while empty < EMPTY_POLLS and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch:
                empty += 1
                continue
            empty = 0
            for tp, recs in batch.items():
                for r in recs:
                    if before_ms is not None and r.timestamp >= before_ms:
                        done.add(tp)
                        break
                    records.append(r)
                if tp in done:
                    consumer.pause(tp)
            if done and done >= set(partitions):
                break
        return records
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str, deadline: float) -> set[int]:
    """The partitions of ``topic`` (none if it does not exist yet)."""
    if time.monotonic() > deadline or topic not in await consumer.topics():
        return set()
    return consumer.partitions_for_topic(topic) or set()
