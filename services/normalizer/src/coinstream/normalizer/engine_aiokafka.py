"""The default engine (aiokafka): consume a batch, transform, produce batches, commit after acks.

Two offsets per raw partition are committed, both only after every record produced for the
batch (and every dead letter) is acknowledged:

- the group's own offset is the *emitted* position: every record before it has its outputs
  on the canonical topics (so consumer lag means what it says);
- the companion group ``<group_id><state_group_suffix>`` holds the *state floor*: the oldest
  record still feeding an open candle or consolidation window (``Normalizer.floor()``).

After a restart or rebalance each assigned partition is read again from its state floor, and
the outputs of records before the emitted position are suppressed: they rebuild the open
state without being published twice. A restart therefore re-emits only what was in flight
(produced but not yet committed).

Producing classifies failures (``coinstream.runtime.batching``): transient ones are retried
with backoff as long as it takes; an output the broker refuses for itself (too large, say)
is dead-lettered with its raw record as origin, and the rest of the batch goes through.

Batches are pipelined one deep: batch N+1 is fetched (aiokafka prefetches in the background)
and transformed while batch N's records are in flight; N+1 is sent only once N is
acknowledged and committed, so outputs keep their order and commits stay in order. The commit
offsets of a batch are fixed right after it is transformed (the floor at that point), never
from state changed by a later batch whose outputs are not acknowledged yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import TopicPartition

from coinstream.normalizer import metrics
from coinstream.normalizer.core import DeadLetterOut, Stage
from coinstream.runtime import (
    BatchSender,
    DeadLetterPublisher,
    KafkaConsumer,
    KafkaProducer,
    OutRecord,
    StoppedError,
)
from coinstream.runtime.kafka import connection_kwargs

log = logging.getLogger(__name__)

REWIND_TIMEOUT_S = 15.0
"""How long a rebalance may spend reading the state floors before it gives up on them."""


class _Work(NamedTuple):
    """One transformed batch waiting to be produced and committed."""

    started: float
    generation: int
    records: int
    outputs: list[tuple[str, bytes, bytes]]
    origins: list[int]  # per output: index of its raw record in ``sources``
    sources: list[Any]  # the raw records whose outputs are in ``outputs``
    letters: list[DeadLetterOut]
    offsets: dict[TopicPartition, int]  # emitted position after this batch
    floors: dict[TopicPartition, int]  # state floor after this batch


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, engine: AiokafkaEngine) -> None:
        self._engine = engine

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self._engine.generation += 1

    async def on_partitions_assigned(self, assigned: Any) -> None:
        # Every assigned partition restarts from its committed offsets: rebuild state there.
        engine = self._engine
        engine.generation += 1
        engine.core.reset()
        engine.committed.clear()
        engine.floors_committed.clear()
        engine.suppress_until.clear()
        engine.rewinds.clear()
        engine.assigned = len(assigned)
        await engine.rewind(list(assigned))
        log.info("partitions assigned", extra={"partitions": sorted(str(tp) for tp in assigned)})


class AiokafkaEngine:
    def __init__(
        self,
        core: Stage,
        producer: KafkaProducer,
        topics: list[str],
        group_id: str,
        batch_max_records: int,
        poll_timeout_ms: int,
        state_group_suffix: str = ".state",
        service: str = "normalizer",
    ) -> None:
        self.core = core
        self.producer = producer
        self.sender = BatchSender(producer)
        self.dlq = DeadLetterPublisher(producer, service=service)
        self.topics = topics
        self.group_id = group_id
        self.state_group = f"{group_id}{state_group_suffix}"
        self.batch_max_records = batch_max_records
        self.batch_topic: str | None = getattr(core, "batch_topic", None)
        self.group_bytes = max(1024, producer.settings.max_record_bytes // 2)
        self.poll_timeout_ms = poll_timeout_ms
        self.generation = 0
        self.assigned = 0
        self.committed: dict[TopicPartition, int] = {}
        self.floors_committed: dict[TopicPartition, int] = {}
        self.suppress_until: dict[tuple[str, int], int] = {}
        self.rewinds: dict[TopicPartition, tuple[int, int]] = {}
        self.last_batch_at = time.monotonic()
        self.delivered = 0  # records whose outputs the broker acknowledged
        self.replayed = 0  # records re-read to rebuild state, outputs suppressed
        self.consumer: KafkaConsumer | None = None
        self._state: AIOKafkaConsumer | None = None
        self._stop: asyncio.Event | None = None

    def ready(self) -> tuple[bool, str]:
        if self.consumer is None:
            return False, "consumer not started"
        return True, f"{self.assigned} partitions assigned"

    async def _state_consumer(self) -> AIOKafkaConsumer:
        """A consumer of the companion group: never fetches (all partitions paused), only
        reads and commits the state floors of the raw partitions."""
        if self._state is None:
            state = AIOKafkaConsumer(
                **connection_kwargs(self.producer.settings),
                group_id=self.state_group,
                enable_auto_commit=False,
            )
            try:
                await state.start()
            except BaseException:
                await state.stop()
                raise
            self._state = state
        return self._state

    async def _state_assign(self, tps: list[TopicPartition]) -> AIOKafkaConsumer:
        state = await self._state_consumer()
        wanted = set(tps) | set(state.assignment())
        if wanted != set(state.assignment()):
            state.assign(sorted(wanted))
        state.pause(*state.assignment())
        return state

    async def rewind(self, assigned: list[TopicPartition]) -> None:
        """Plan, per assigned partition, a seek back to its state floor; the outputs of the
        records between the floor and the emitted position will be suppressed (they were
        published already). The seek itself waits for the partition's first fetched records
        (``_apply_rewinds``): aiokafka initialises positions from the committed offsets in
        the background while the rebalance listener runs, which would undo an earlier seek."""
        consumer = self.consumer
        if consumer is None or not assigned:
            return
        # No record of these partitions may be returned before the plan is known.
        consumer.raw.pause(*assigned)
        try:
            await asyncio.wait_for(self._plan(consumer, assigned), REWIND_TIMEOUT_S)
        except Exception as exc:
            # Without the floors the open candles restart from the emitted position: they are
            # still correct from there, only the minute in progress misses its earlier trades.
            self.rewinds.clear()
            log.warning("state floors not read; starting at the emitted position", extra={
                "error": repr(exc)})  # fmt: skip
        finally:
            consumer.raw.resume(*assigned)

    async def _plan(self, consumer: KafkaConsumer, assigned: list[TopicPartition]) -> None:
        state = await self._state_assign(assigned)
        for tp in assigned:
            emitted = await consumer.raw.committed(tp)
            floor = await state.committed(tp)
            if emitted is not None and floor is not None and floor < emitted:
                self.rewinds[tp] = (floor, emitted)

    def _apply_rewinds(
        self, consumer: KafkaConsumer, batch: dict[TopicPartition, list[Any]]
    ) -> dict[TopicPartition, list[Any]]:
        """Seek the partitions planned by ``rewind`` whose first records arrived (dropping
        those records: they start at the emitted position, after the state floor)."""
        for tp in [tp for tp in batch if tp in self.rewinds]:
            floor, emitted = self.rewinds.pop(tp)
            first = batch[tp][0].offset
            if first > floor:
                del batch[tp]
                consumer.raw.seek(tp, floor)
                self.suppress_until[(tp.topic, tp.partition)] = emitted
                log.info(
                    "rebuilding open state",
                    extra={"partition": str(tp), "from": floor, "published_until": emitted},
                )
        return batch

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.producer.settings
        self._stop = stop
        try:
            await self._run(settings, stop)
        finally:
            if self._state is not None:
                state, self._state = self._state, None
                with contextlib.suppress(Exception):
                    await state.stop()

    async def _run(self, settings: Any, stop: asyncio.Event) -> None:
        try:  # join the companion group early, not inside the first rebalance
            await asyncio.wait_for(self._state_consumer(), REWIND_TIMEOUT_S)
        except Exception as exc:
            log.warning("state group not reachable yet", extra={"error": repr(exc)})
        async with KafkaConsumer(
            settings, self.topics, self.group_id, listener=_Rebalance(self)
        ) as consumer:
            self.consumer = consumer
            pending: asyncio.Task[bool] | None = None
            try:
                while not stop.is_set():
                    batch = await consumer.getmany(
                        timeout_ms=self.poll_timeout_ms, max_records=self.batch_max_records
                    )
                    self.last_batch_at = time.monotonic()
                    if batch and self.rewinds:
                        batch = self._apply_rewinds(consumer, batch)
                    if batch:
                        # Transform this batch while the previous one's acks are awaited; its
                        # records are sent only after the previous batch is acknowledged and
                        # committed, so outputs keep their order and commits stay in order.
                        work = self._transform(batch)
                        if pending is not None and not await pending:
                            pending = None
                            break  # stopped before the acks: nothing more is committed
                        pending = asyncio.create_task(self._complete(consumer, work, stop))
                    elif pending is not None and pending.done():
                        done, pending = pending, None
                        if not done.result():
                            break
                    metrics.record(self.core.stats)
                if pending is not None:
                    await pending
            finally:
                if pending is not None and not pending.done():
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pending
                self.consumer = None

    def _transform(self, batch: dict[TopicPartition, list[Any]]) -> _Work:
        """Run the core over a batch (no I/O). The commit offsets are fixed here, right after
        the batch: never past the oldest record that still feeds open state at that point."""
        started = time.perf_counter()
        generation = self.generation
        process = self.core.process
        outputs: list[tuple[str, bytes, bytes]] = []
        origins: list[int] = []
        sources: list[Any] = []
        letters: list[DeadLetterOut] = []
        offsets: dict[TopicPartition, int] = {}
        floors: dict[TopicPartition, int] = {}
        count = 0
        suppress = self.suppress_until
        for tp, records in batch.items():
            key = (tp.topic, tp.partition)
            until = suppress.get(key)
            for r in records:
                produced, letter = process(r.topic, r.partition, r.offset, r.key, r.value)
                if until is not None and r.offset < until:
                    self.replayed += 1  # rebuilt state; its outputs were published already
                    continue
                if produced:
                    origins += [len(sources)] * len(produced)
                    sources.append(r)
                    outputs += produced
                if letter is not None:
                    letters.append(letter)
            if until is not None and records[-1].offset + 1 >= until:
                del suppress[key]
            count += len(records)
            next_offset = records[-1].offset + 1
            offsets[tp] = next_offset
            floor = self.core.floor(key)
            floors[tp] = next_offset if floor is None else min(floor, next_offset)
        if self.batch_topic is not None:
            outputs, origins = self._group(outputs, origins)
        return _Work(
            started, generation, count, outputs, origins, sources, letters, offsets, floors
        )

    def _group(
        self, outputs: list[tuple[str, bytes, bytes]], origins: list[int]
    ) -> tuple[list[tuple[str, bytes, bytes]], list[int]]:
        """The batch's records for ``core.batch_topic`` as JSON arrays, one per key (split to
        stay under the record size limit): the internal trades-by-asset topic then carries a
        few records per batch instead of one per trade. Readers count each element once, by
        its event id, so a batch re-sent after a restart (grouped differently) changes
        nothing."""
        topic = self.batch_topic
        assert topic is not None
        kept: list[tuple[str, bytes, bytes]] = []
        kept_origins: list[int] = []
        groups: dict[bytes, tuple[list[bytes], list[int]]] = {}
        for out, origin in zip(outputs, origins, strict=True):
            if out[0] != topic:
                kept.append(out)
                kept_origins.append(origin)
                continue
            values, size = groups.setdefault(out[1], ([], [0, origin]))
            if values and size[0] + len(out[2]) > self.group_bytes:
                kept.append((topic, out[1], b"[" + b",".join(values) + b"]"))
                kept_origins.append(size[1])
                values.clear()
                size[0] = 0
            values.append(out[2])
            size[0] += len(out[2]) + 1
            size[1] = origin
        for key, (values, size) in groups.items():
            if values:
                kept.append((topic, key, b"[" + b",".join(values) + b"]"))
                kept_origins.append(size[1])
        return kept, kept_origins

    async def _complete(self, consumer: KafkaConsumer, work: _Work, stop: asyncio.Event) -> bool:
        """Produce a transformed batch, await every ack, then commit. False if stopped first."""
        try:
            await self._deliver(work, stop)
        except StoppedError:
            return False  # stopping before the batch was acknowledged: nothing is committed
        self.delivered += work.records
        if work.generation != self.generation:
            return True  # a rebalance happened: these partitions restart from committed offsets
        await self._commit(consumer, work)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - work.started)
        candles = getattr(self.core, "candles", None)
        if candles:
            metrics.OPEN_CANDLES.set(candles.open_candles())
        registry = getattr(self.core, "registry", None)
        if registry is not None:
            metrics.UNMAPPED.set(len(registry.unmapped))
        return True

    async def _commit(self, consumer: KafkaConsumer, work: _Work) -> None:
        """Commit the emitted positions, then the changed state floors. In that order: a
        floor is never ahead of the emitted position it belongs to (a rebalance can refuse
        the group commit), while a floor older than needed only means more re-reading."""
        commits = {
            tp: offset for tp, offset in work.offsets.items() if offset > self.committed.get(tp, -1)
        }
        floors = {
            tp: floor for tp, floor in work.floors.items() if self.floors_committed.get(tp) != floor
        }
        try:
            if commits:
                await consumer.commit(commits)
                self.committed.update(commits)
                metrics.COMMITS.inc()
            if floors:
                state = await self._state_assign(list(floors))
                await state.commit(floors)
                self.floors_committed.update(floors)
        except (CommitFailedError, KafkaError, OSError) as exc:
            metrics.ERRORS.inc()
            log.warning("commit failed; records will be re-read", extra={"error": repr(exc)})

    async def _deliver(self, work: _Work, stop: asyncio.Event) -> None:
        """Produce the outputs, then the dead letters (the core's, and one per raw record
        whose output the broker refused); retry transient failures until stored."""
        refused = await self.sender.deliver(work.outputs, stop=stop)  # type: ignore[arg-type]
        letters: list[OutRecord] = [
            self.dlq.letter(
                d.value,
                reason=d.reason,
                error=d.error_class,
                origin_topic=d.origin_topic,
                origin_partition=d.origin_partition,
                origin_offset=d.origin_offset,
                key=d.key,
            )
            for d in work.letters
        ]
        seen: set[int] = set()
        for r in refused:
            source_index = work.origins[r.index]
            if source_index in seen:
                continue
            seen.add(source_index)
            raw = work.sources[source_index]
            metrics.ERRORS.inc()
            self.core.stats["dead_letters"]["OutputRefused"] += 1
            self.core.totals["dead_letters"] += 1
            letters.append(
                self.dlq.letter(
                    raw.value,
                    reason=f"an event made from this record {r.reason}",
                    error=r.error,
                    origin_topic=raw.topic,
                    origin_partition=raw.partition,
                    origin_offset=raw.offset,
                    key=raw.key,
                )
            )
        await self.dlq.deliver(letters, stop=stop)
