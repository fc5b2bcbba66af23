"""The default engine (aiokafka): consume a batch, transform, produce batches, commit after acks.

Offsets are committed only after every record produced for the batch (and every dead letter)
is acknowledged, and never past ``Normalizer.floor()``: records that still feed open candles,
consolidation windows or the dedup window are re-read after a restart or rebalance.

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

from aiokafka import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import TopicPartition

from coinstream.normalizer import metrics
from coinstream.normalizer.core import DeadLetterOut, Normalizer
from coinstream.normalizer.sender import BatchSender
from coinstream.runtime import Backoff, DeadLetterPublisher, KafkaConsumer, KafkaProducer

log = logging.getLogger(__name__)


class _Work(NamedTuple):
    """One transformed batch waiting to be produced and committed."""

    started: float
    generation: int
    records: int
    outputs: list[tuple[str, bytes, bytes]]
    letters: list[DeadLetterOut]
    offsets: dict[TopicPartition, int]


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, engine: AiokafkaEngine) -> None:
        self._engine = engine

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self._engine.generation += 1

    async def on_partitions_assigned(self, assigned: Any) -> None:
        # Every assigned partition restarts from its committed offset: rebuild state from there.
        self._engine.generation += 1
        self._engine.core.reset()
        self._engine.committed.clear()
        self._engine.assigned = len(assigned)
        log.info("partitions assigned", extra={"partitions": sorted(str(tp) for tp in assigned)})


class AiokafkaEngine:
    def __init__(
        self,
        core: Normalizer,
        producer: KafkaProducer,
        topics: list[str],
        group_id: str,
        batch_max_records: int,
        poll_timeout_ms: int,
    ) -> None:
        self.core = core
        self.producer = producer
        self.sender = BatchSender(producer)
        self.dlq = DeadLetterPublisher(producer, service="normalizer")
        self.topics = topics
        self.group_id = group_id
        self.batch_max_records = batch_max_records
        self.poll_timeout_ms = poll_timeout_ms
        self.generation = 0
        self.assigned = 0
        self.committed: dict[TopicPartition, int] = {}
        self.last_batch_at = time.monotonic()
        self.delivered = 0  # records whose outputs the broker acknowledged
        self.consumer: KafkaConsumer | None = None

    def ready(self) -> tuple[bool, str]:
        if self.consumer is None:
            return False, "consumer not started"
        return True, f"{self.assigned} partitions assigned"

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.producer.settings
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
        commit_offset = self.core.commit_offset
        outputs: list[tuple[str, bytes, bytes]] = []
        append = outputs.append
        letters: list[DeadLetterOut] = []
        offsets: dict[TopicPartition, int] = {}
        count = 0
        for tp, records in batch.items():
            for r in records:
                produced, letter = process(r.topic, r.partition, r.offset, r.key, r.value)
                for o in produced:
                    append(o)
                if letter is not None:
                    letters.append(letter)
            count += len(records)
            offsets[tp] = commit_offset((tp.topic, tp.partition), records[-1].offset + 1)
        return _Work(started, generation, count, outputs, letters, offsets)

    async def _complete(self, consumer: KafkaConsumer, work: _Work, stop: asyncio.Event) -> bool:
        """Produce a transformed batch, await every ack, then commit. False if stopped first."""
        if not await self._deliver(work.outputs, work.letters, stop):
            return False  # stopping before the batch was acknowledged: nothing is committed
        self.delivered += work.records
        if work.generation != self.generation:
            return True  # a rebalance happened: these partitions restart from committed offsets
        commits = {
            tp: offset for tp, offset in work.offsets.items() if offset > self.committed.get(tp, -1)
        }
        if commits:
            try:
                await consumer.commit(commits)
                self.committed.update(commits)
                metrics.COMMITS.inc()
            except (CommitFailedError, KafkaError) as exc:
                metrics.ERRORS.inc()
                log.warning("commit failed; records will be re-read", extra={"error": repr(exc)})
        metrics.BATCH_SECONDS.observe(time.perf_counter() - work.started)
        candles = getattr(self.core, "candles", None)
        if candles:
            metrics.OPEN_CANDLES.set(candles.open_candles())
        metrics.UNMAPPED.set(len(self.core.registry.unmapped))
        return True

    async def _deliver(
        self,
        outputs: list[tuple[str, bytes, bytes]],
        letters: list[DeadLetterOut],
        stop: asyncio.Event,
    ) -> bool:
        """Produce everything and wait for the acks; retry with backoff. False if stopped."""
        backoff = Backoff(initial=0.2, maximum=5.0)
        while True:
            try:
                futures = await self.sender.send(outputs)
                for d in letters:
                    futures.append(
                        await self.dlq.publish(
                            d.value,
                            reason=d.reason,
                            error=d.error_class,
                            origin_topic=d.origin_topic,
                            origin_partition=d.origin_partition,
                            origin_offset=d.origin_offset,
                            key=d.key,
                        )
                    )
                await asyncio.gather(*futures)
                return True
            except KafkaError as exc:
                metrics.ERRORS.inc()
                delay = backoff.next_delay()
                log.warning(
                    "produce failed; retrying", extra={"error": repr(exc), "delay_s": delay}
                )
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    return False
                except TimeoutError:
                    continue
