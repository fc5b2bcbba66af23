"""Roll the local Tansu broker over to a fresh process without losing anything.

Tansu's memory engine keeps every record and enforces no retention (docs/local-broker.md), so
its memory grows with everything ever produced, and its CPU per record grows with it. A
roll-over restarts it on the same port and puts back only what someone still needs, **at the
same offsets**, so every offset anyone stored stays valid: consumer groups' commits, the
normalizer's state floors, the alerts service's offsets in PostgreSQL, ingest-ws checkpoints.

1. Freeze every client process (SIGSTOP) so nothing is produced or committed meanwhile, and
   let the broker finish the requests it already received.
2. Read what the old broker holds: topics, partitions and configs; every consumer group's
   committed offsets; per partition, the records from the lowest offset a group still needs
   (``keep_from``) to the end. A group constrains every partition of each topic it committed
   on (a partition it has not committed on yet needs everything). Compacted topics keep the
   newest record per key below ``keep_from``. Partitions no group reads keep everything,
   except topics listed in ``trim_unconsumed`` (the dead-letter topic), which keep their newest
   ``keep_unconsumed`` records, as retention would.
3. Restart the broker, create the topics, and write each partition back: the offsets below
   the first kept record (and any hole compaction left) are covered by one **control batch**
   whose offset range spans them. Consumers skip control batches (transaction markers), so
   the range reads like a log whose start was deleted by retention, and the next record gets
   the old offset. Each write is checked against the offset it must get.
4. Commit every group's offsets again, then thaw the clients (SIGCONT). They reconnect to the
   same address; consumers rejoin their groups and continue from the committed offsets (what
   they had processed but not yet committed is replayed and absorbed by event ids), producers
   resend what was not acknowledged.

Only the devstack needs this: Apache Kafka enforces retention itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.protocol.commit import OffsetFetchRequest
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.default_records import DefaultRecordBase, DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import TopicPartition

from coinstream.devstack.broker import TansuBroker
from coinstream.runtime import KafkaSettings
from coinstream.runtime.kafka import connection_kwargs

log = logging.getLogger(__name__)

SETTLE_S = 0.3
"""After freezing the clients, how long the broker gets to finish requests already sent."""
BATCH_BYTES = 512 * 1024
FETCH_BYTES = 16 * 1024 * 1024
READ_TIMEOUT_S = 30.0
READ_WAIT_MS = 200
"""How long reading may wait for a busy broker before the roll-over is called off."""
RETRY_AFTER_S = 60.0
WRITE_ATTEMPTS = 3
EMPTY_POLLS = 3
CONTROL_BATCH = 0x20  # record batch attribute: control batch (skipped by consumers)


class RollOverError(RuntimeError):
    """The new broker did not take the records back at their offsets."""


def rss_mb(pid: int | None) -> float:
    """Resident memory of a process in MB (0 if it is gone)."""
    if pid is None:
        return 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def gap_batch(span: int, timestamp_ms: int) -> bytes:
    """A control batch covering ``span`` offsets with one commit marker at its last offset."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1024,
    )
    # control record: key (version 0, type 1 = COMMIT), value (version 0, coordinator epoch 0)
    builder.append(
        span - 1,
        timestamp=timestamp_ms,
        key=struct.pack(">hh", 0, 1),
        value=struct.pack(">hi", 0, 0),
        headers=[],
    )
    buf = builder.build()
    base = DefaultRecordBase
    attributes = struct.unpack_from(">h", buf, base.ATTRIBUTES_OFFSET)[0] | CONTROL_BATCH
    struct.pack_into(">h", buf, base.ATTRIBUTES_OFFSET, attributes)
    struct.pack_into(">I", buf, base.CRC_OFFSET, calc_crc32c(bytes(buf[base.ATTRIBUTES_OFFSET :])))
    return bytes(buf)


@dataclass(slots=True)
class Kept:
    """One record to put back, at its offset."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass
class PartitionState:
    end: int = 0
    keep_from: int = 0
    read_by_groups: bool = False
    keep_newest: int | None = None  # unconsumed and trimmable: keep this many newest records
    records: list[Kept] = field(default_factory=list)
    fetched_to: int = 0  # records were read up to here (raw path)

    @property
    def kept(self) -> int:
        return len(self.records)


@dataclass
class Snapshot:
    """Everything the new broker must hold."""

    topics: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)
    groups: dict[str, dict[TopicPartition, int]] = field(default_factory=dict)
    partitions: dict[TopicPartition, PartitionState] = field(default_factory=dict)

    @property
    def kept(self) -> int:
        return sum(p.kept for p in self.partitions.values())

    @property
    def dropped(self) -> int:
        return sum(p.keep_from for p in self.partitions.values())


@dataclass
class RollReport:
    rss_before_mb: float
    rss_after_mb: float
    frozen_s: float
    kept: int
    dropped: int
    phases: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Seconds frozen reading the rest, restarting the broker, writing back."""

    def __str__(self) -> str:
        read, restart, write = self.phases
        return (
            f"broker rolled over: RSS {self.rss_before_mb:.0f} -> {self.rss_after_mb:.0f} MB, "
            f"{self.kept} records kept at their offsets, {self.dropped} offsets below what "
            f"every group had committed released, clients frozen {self.frozen_s:.1f} s "
            f"(read {read:.1f}, restart {restart:.1f}, write {write:.1f})"
        )


class BrokerRoller:
    """Rolls ``broker`` over when its RSS passes ``max_rss_mb`` (``check()``), or on demand
    (``roll()``). ``pids`` are the client processes to freeze meanwhile (a list or a function
    returning the current ones)."""

    def __init__(
        self,
        broker: TansuBroker,
        kafka: KafkaSettings,
        pids: Sequence[int] | Callable[[], Sequence[int]],
        *,
        max_rss_mb: float,
        trim_unconsumed: Iterable[str] = (),
        keep_unconsumed: int = 10_000,
    ) -> None:
        self.broker = broker
        self.kafka = kafka
        self._pids = pids
        self.max_rss_mb = max_rss_mb
        self.trim_unconsumed = set(trim_unconsumed)
        self.keep_unconsumed = keep_unconsumed
        self.rolls = 0
        self.reports: list[RollReport] = []
        self._floor_mb = 0.0  # RSS right after the last roll: roll again only well above it
        self._retry_at = 0.0
        self.failures = 0

    @property
    def pid(self) -> int | None:
        return self.broker.pid

    def due(self) -> bool:
        limit = max(self.max_rss_mb, 2 * self._floor_mb)
        return self.max_rss_mb > 0 and rss_mb(self.broker.pid) > limit

    async def check(self) -> RollReport | None:
        """Roll over if the broker's memory passed the limit. A roll-over called off before
        the broker was restarted (it could not read everything) changes nothing; it is
        logged and tried again after ``RETRY_AFTER_S``."""
        if not self.due() or time.monotonic() < self._retry_at:
            return None
        try:
            return await self.roll()
        except RollOverError as exc:
            if self.broker.pid is None:
                raise
            self._retry_at = time.monotonic() + RETRY_AFTER_S
            self.failures += 1
            log.error("broker roll-over called off", extra={"error": str(exc)})
            return None

    def summary(self) -> str:
        if not self.reports:
            return "no roll-over"
        frozen = [r.frozen_s for r in self.reports]
        return (
            f"{len(self.reports)} roll-overs, clients frozen {min(frozen):.1f}-{max(frozen):.1f} s"
            f", RSS after each {', '.join(f'{r.rss_after_mb:.0f}' for r in self.reports)} MB"
        )

    async def roll(self) -> RollReport:
        before = rss_mb(self.broker.pid)
        pids = list(self._pids() if callable(self._pids) else self._pids)
        # Read the bulk while the clients run; frozen, only what came since is read.
        early = await snapshot(self.kafka, self.trim_unconsumed, self.keep_unconsumed)
        early = await snapshot(  # again: what came during the first pass
            self.kafka, self.trim_unconsumed, self.keep_unconsumed, previous=early
        )
        started = time.monotonic()
        _signal_all(pids, signal.SIGSTOP)
        try:
            await asyncio.sleep(SETTLE_S)
            snap = await snapshot(
                self.kafka, self.trim_unconsumed, self.keep_unconsumed, previous=early
            )
            read = time.monotonic()
            # SIGKILL: everything is read, and a polite stop waits for the frozen clients'
            # connections (5 s). From here the kept records live only in this process: a
            # write that fails is done again on a fresh broker.
            for attempt in range(WRITE_ATTEMPTS):
                await asyncio.to_thread(self.broker.stop, True)
                await asyncio.to_thread(self.broker.start)
                restarted = time.monotonic()
                try:
                    await restore(self.kafka, snap)
                    break
                except Exception:
                    if attempt + 1 == WRITE_ATTEMPTS:
                        raise
                    log.exception("writing back to the new broker failed; starting it again")
            phases = (read - started, restarted - read, time.monotonic() - restarted)
        finally:
            _signal_all(pids, signal.SIGCONT)
        report = RollReport(
            before,
            rss_mb(self.broker.pid),
            time.monotonic() - started,
            snap.kept,
            snap.dropped,
            phases,
        )
        self._floor_mb = report.rss_after_mb
        self.rolls += 1
        self.reports.append(report)
        log.warning(str(report))
        return report


def _signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


# -- reading the old broker -------------------------------------------------------------------


async def snapshot(
    kafka: KafkaSettings,
    trim_unconsumed: set[str],
    keep_unconsumed: int,
    previous: Snapshot | None = None,
) -> Snapshot:
    """What the broker holds now. With ``previous`` (a snapshot taken moments before, while
    the clients still ran), records it already read are reused and only the rest is
    fetched: the clients stay frozen only for the delta."""
    snap = Snapshot()
    admin = AIOKafkaAdminClient(**connection_kwargs(kafka))
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if not t.startswith("__")]
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t) for t in names]
        )
        configs: dict[str, dict[str, str]] = {}
        for response in described:
            for resource in response.resources:
                configs[resource[3]] = {
                    entry[0]: entry[1] for entry in resource[4] if entry[1] is not None
                }
        group_ids = [g for g, _ in await admin.list_consumer_groups()]
    finally:
        await admin.close()
    reader = AIOKafkaConsumer(
        **connection_kwargs(kafka),
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=READ_WAIT_MS,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await reader.start()
    try:
        await reader.topics()
        tps: list[TopicPartition] = []
        for name in names:
            parts = sorted(reader.partitions_for_topic(name) or ())
            snap.topics[name] = (len(parts), configs.get(name, {}))
            tps += [TopicPartition(name, p) for p in parts]
        for group in group_ids:
            snap.groups[group] = await _committed(reader, group, tps)
        reported = await reader.end_offsets(tps) if tps else {}
        compacted = {
            t for t, (_, c) in snap.topics.items() if "compact" in c.get("cleanup.policy", "")
        }
        for tp in tps:
            state = snap.partitions[tp] = PartitionState()
            needs = [
                offsets.get(tp, 0)
                for offsets in snap.groups.values()
                if any(t.topic == tp.topic for t in offsets)
            ]
            if needs:
                state.keep_from = min(needs)
                state.read_by_groups = True
            elif tp.topic in trim_unconsumed:
                # the reported end is at most the true one: start there, trim once read
                state.keep_from = max(0, reported.get(tp, 0) - keep_unconsumed)
                state.keep_newest = keep_unconsumed
            else:
                state.keep_from = 0
        await _read_tails(reader, snap, compacted, previous)
    finally:
        await reader.stop()
    return snap


async def _committed(
    reader: AIOKafkaConsumer, group: str, tps: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    """The group's committed offsets, in one OffsetFetch request (a single broker: it is the
    coordinator of every group)."""
    client: Any = reader._client
    node = next(iter(client.cluster.brokers())).nodeId
    by_topic: dict[str, list[int]] = {}
    for tp in tps:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    response = await client.send(node, OffsetFetchRequest(group, list(by_topic.items())))
    out = {}
    for topic, partitions in response.topics:
        for entry in partitions:
            partition, offset, error = entry[0], entry[1], entry[-1]
            if error == 0 and offset >= 0:
                out[TopicPartition(topic, partition)] = offset
    return out


async def _read_tails(
    reader: AIOKafkaConsumer, snap: Snapshot, compacted: set[str], previous: Snapshot | None
) -> None:
    """Read each partition from ``keep_from`` (compacted topics: from 0) to its end; the end is
    where the reader stands once nothing more comes (the broker's end offsets are wrong).
    Partitions kept whole from ``keep_from`` (the bulk) are fetched with plain fetch requests
    and decoded by aiokafka's record reader; compacted and trimmed ones through a consumer."""
    raw = [
        tp
        for tp, st in snap.partitions.items()
        if tp.topic not in compacted and st.keep_newest is None
    ]
    starts: dict[TopicPartition, int] = {}
    for tp in raw:
        state = snap.partitions[tp]
        start = state.keep_from
        before = previous.partitions.get(tp) if previous is not None else None
        if before is not None and before.keep_newest is None and before.keep_from <= start:
            state.records = [r for r in before.records if r.offset >= start]
            start = max(start, before.fetched_to)
        starts[tp] = start
    ends = await _fetch_records(reader, {tp: snap.partitions[tp] for tp in raw}, starts)
    for tp in raw:
        state = snap.partitions[tp]
        state.fetched_to = ends[tp]
        committed = [o[tp] for o in snap.groups.values() if tp in o]
        state.end = max([ends[tp], state.keep_from, *committed])
    tps = [tp for tp in snap.partitions if tp not in set(raw)]
    if not tps:
        return
    reader.assign(tps)
    for tp in tps:
        reader.seek(tp, 0 if tp.topic in compacted else snap.partitions[tp].keep_from)
    got: dict[TopicPartition, list[Kept]] = {tp: [] for tp in tps}
    empty = 0
    while empty < EMPTY_POLLS:
        batch = await reader.getmany(timeout_ms=100, max_records=50_000)
        if not batch:
            empty += 1
            continue
        empty = 0
        for tp, records in batch.items():
            got[tp] += [
                Kept(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in records
            ]
    deadline = time.monotonic() + READ_TIMEOUT_S
    for tp in tps:
        state = snap.partitions[tp]
        position = await reader.position(tp)
        # until the broker has answered for this partition and we reached its high watermark
        while reader.highwater(tp) is None or position < reader.highwater(tp):
            if time.monotonic() > deadline:
                raise RollOverError(
                    f"{tp.topic}:{tp.partition}: read to {position}, below the high watermark "
                    f"{reader.highwater(tp)}; not rolling over"
                )
            batch = await reader.getmany(tp, timeout_ms=100, max_records=50_000)
            got[tp] += [
                Kept(r.offset, r.timestamp, r.key, r.value, list(r.headers))
                for r in batch.get(tp, [])
            ]
            position = await reader.position(tp)
        committed = [o[tp] for o in snap.groups.values() if tp in o]
        state.end = max([position, state.keep_from, *committed])
        records = got[tp]
        if state.keep_newest is not None:
            state.keep_from = max(state.keep_from, state.end - state.keep_newest)
            records = [r for r in records if r.offset >= state.keep_from]
        if tp.topic in compacted:
            if not state.read_by_groups:  # read whole by its readers (ingest checkpoints)
                state.keep_from = state.end
            newest: dict[bytes | None, int] = {}
            for i, r in enumerate(records):
                if r.offset < state.keep_from:
                    newest[r.key] = i
            old = sorted(newest.values())
            records = [records[i] for i in old] + [
                r for r in records if r.offset >= state.keep_from
            ]
        state.records = records


async def _fetch_records(
    reader: AIOKafkaConsumer,
    states: dict[TopicPartition, PartitionState],
    starts: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Fetch every partition's records from its start to its end into ``state.records``
    (those from ``keep_from`` on), all partitions in each fetch request; return where each
    ends (the offset after its last batch, control batches included).

    A partition is at its end once the broker's high watermark says so, never because a
    fetch came back empty: Tansu answers a fetch empty when finding the records takes longer
    than the fetch's max wait (old offsets of a log near 1 GB: every time at 10 ms), so the
    wait here is long; it costs nothing when records are there."""
    client: Any = reader._client
    offsets = dict(starts)
    done: set[TopicPartition] = set()
    deadline = time.monotonic() + READ_TIMEOUT_S
    while len(done) < len(offsets):
        wanted: dict[str, list[tuple[int, int, int]]] = {}
        for tp, offset in offsets.items():
            if tp not in done:
                wanted.setdefault(tp.topic, []).append((tp.partition, offset, FETCH_BYTES))
        node = next(iter(client.cluster.brokers())).nodeId
        request = FetchRequest(READ_WAIT_MS, 1, FETCH_BYTES, 0, list(wanted.items()))
        response = await client.send(node, request)
        progress = False
        for topic, partitions in response.topics:
            for part in partitions:
                tp = TopicPartition(topic, part[0])
                if part[1] != 0:
                    raise RollOverError(f"{topic}:{tp.partition}: fetch: error {part[1]}")
                offset = offsets[tp]
                fetched_from = offset
                keep = states[tp].keep_from
                out = states[tp].records
                records = MemoryRecords(part[-1]) if part[-1] else None
                while records is not None and records.has_next():
                    batch = records.next_batch()
                    if batch is None:
                        break  # cut by the fetch size: fetched again from there
                    if batch.next_offset <= offset:
                        continue
                    if not batch.is_control_batch:
                        out += [
                            Kept(r.offset, r.timestamp, r.key, r.value, list(r.headers))
                            for r in batch
                            if r.offset >= keep
                        ]
                    offset = batch.next_offset
                offsets[tp] = offset
                progress |= offset > fetched_from
                if offset >= part[2]:  # the high watermark
                    done.add(tp)
        if not progress and len(done) < len(offsets):
            if time.monotonic() > deadline:
                stuck = sorted(f"{tp.topic}:{tp.partition}" for tp in offsets if tp not in done)
                raise RollOverError(
                    f"the broker answers nothing below the high watermark of {stuck}; "
                    "not rolling over"
                )
            await asyncio.sleep(0.05)
    return offsets


# -- writing the new broker -------------------------------------------------------------------


async def restore(kafka: KafkaSettings, snap: Snapshot) -> None:
    admin = AIOKafkaAdminClient(**connection_kwargs(kafka))
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(name, partitions, 1, topic_configs=configs)
                for name, (partitions, configs) in snap.topics.items()
            ]
        )
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**connection_kwargs(kafka), acks="all", enable_idempotence=False)
    await producer.start()
    try:
        # partitions in parallel (each one's batches in order: each must land at its offset)
        await asyncio.gather(
            *(_write_partition(producer, tp, state) for tp, state in snap.partitions.items())
        )
    finally:
        await producer.stop()
    for group, offsets in snap.groups.items():
        if offsets:
            await _commit(kafka, group, offsets)


async def _write_partition(
    producer: AIOKafkaProducer, tp: TopicPartition, state: PartitionState
) -> None:
    cursor = 0
    run: list[Kept] = []
    now_ms = int(time.time() * 1000)

    async def flush() -> None:
        nonlocal run
        if run:
            await _send(producer, tp, _batch(run), run[0].offset)
            run = []

    size = 0
    for record in state.records:
        if record.offset > cursor:
            await flush()
            size = 0
            await _send(producer, tp, gap_batch(record.offset - cursor, now_ms), cursor)
            cursor = record.offset
        run.append(record)
        size += len(record.key or b"") + len(record.value or b"") + 64
        cursor += 1
        if size >= BATCH_BYTES:
            await flush()
            size = 0
    await flush()
    if state.end > cursor:
        await _send(producer, tp, gap_batch(state.end - cursor, now_ms), cursor)


def _batch(records: Sequence[Kept]) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=2**31 - 1,
    )
    base = records[0].offset
    for r in records:
        builder.append(
            r.offset - base, timestamp=r.timestamp, key=r.key, value=r.value, headers=r.headers
        )
    return bytes(builder.build())


async def _send(producer: AIOKafkaProducer, tp: TopicPartition, data: bytes, offset: int) -> None:
    client: Any = producer.client
    node = client.cluster.leader_for_partition(tp)
    if node is None:
        await client.force_metadata_update()
        node = client.cluster.leader_for_partition(tp)
    request = ProduceRequest(None, -1, 30_000, [(tp.topic, [(tp.partition, data)])])
    response = await client.send(node, request)
    _, partitions = response.topics[0]
    error, base = partitions[0][1], partitions[0][2]
    if error != 0 or base != offset:
        raise RollOverError(
            f"{tp.topic}:{tp.partition}: the new broker put the batch at offset {base} (error "
            f"{error}), not at {offset}"
        )


async def _commit(kafka: KafkaSettings, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(
        **connection_kwargs(kafka), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()
