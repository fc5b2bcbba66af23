"""The default engine (aiokafka): consume a batch, transform, produce batches, commit after acks.

Offsets are committed only after every record produced for the batch (and every dead letter)
is acknowledged, and never past ``Normalizer.floor()``: records that still feed open candles,
consolidation windows or the dedup window are re-read after a restart or rebalance.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import TopicPartition

from coinstream.normalizer import metrics
from coinstream.normalizer.core import DeadLetterOut, Normalizer
from coinstream.normalizer.sender import BatchSender
from coinstream.runtime import Backoff, DeadLetterPublisher, KafkaConsumer, KafkaProducer

log = logging.getLogger(__name__)


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
            try:
                while not stop.is_set():
                    batch = await consumer.getmany(
                        timeout_ms=self.poll_timeout_ms, max_records=self.batch_max_records
                    )
                    self.last_batch_at = time.monotonic()
                    if batch:
                        await self._handle(consumer, batch, stop)
                    metrics.record(self.core.stats)
            finally:
                self.consumer = None

    async def _handle(
        self, consumer: KafkaConsumer, batch: dict[TopicPartition, list[Any]], stop: asyncio.Event
    ) -> None:
        started = time.perf_counter()
        generation = self.generation
        core = self.core
        outputs: list[tuple[str, bytes, bytes]] = []
        letters: list[DeadLetterOut] = []
        next_offsets: dict[TopicPartition, int] = {}
        for tp, records in batch.items():
            for r in records:
                produced, letter = core.process(r.topic, r.partition, r.offset, r.key, r.value)
                for o in produced:
                    outputs.append((o.topic, o.key, o.value))
                if letter is not None:
                    letters.append(letter)
            next_offsets[tp] = records[-1].offset + 1
        if not await self._deliver(outputs, letters, stop):
            return  # stopping before the batch was acknowledged: nothing is committed
        self.delivered += sum(len(records) for records in batch.values())
        if generation != self.generation:
            return  # a rebalance happened: these partitions restart from committed offsets
        commits: dict[TopicPartition, int] = {}
        for tp, nxt in next_offsets.items():
            offset = core.commit_offset((tp.topic, tp.partition), nxt)
            if offset > self.committed.get(tp, -1):
                commits[tp] = offset
        if commits:
            try:
                await consumer.commit(commits)
                self.committed.update(commits)
                metrics.COMMITS.inc()
            except (CommitFailedError, KafkaError) as exc:
                metrics.ERRORS.inc()
                log.warning("commit failed; records will be re-read", extra={"error": repr(exc)})
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        if core.candles:
            metrics.OPEN_CANDLES.set(core.candles.open_candles())
        metrics.UNMAPPED.set(len(core.registry.unmapped))

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
