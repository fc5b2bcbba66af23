"""Small Kafka helpers for tests, the demo and benchmarks (reading topics back, counting)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition

from coinstream.runtime.kafka import connection_kwargs
from coinstream.runtime.settings import KafkaSettings


async def read_topic(
    settings: KafkaSettings,
    topic: str | list[str],
    *,
    min_records: int = 1,
    timeout: float = 30.0,
    until: Callable[[list[ConsumerRecord[Any, Any]]], bool] | None = None,
    idle_s: float | None = None,
) -> list[ConsumerRecord[Any, Any]]:
    """Read ``topic`` from the beginning (no group) until ``min_records`` (or ``until``) holds.

    Returns what was read when the condition holds or ``timeout`` passes, whichever is first;
    callers assert on the result. With ``idle_s`` it also returns once nothing new arrived for
    that long: "everything there is", since end offsets are not used (the local broker
    misreports them).
    """
    topics = [topic] if isinstance(topic, str) else topic
    consumer = AIOKafkaConsumer(
        **connection_kwargs(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id=f"reader-{uuid.uuid4().hex[:8]}",
    )
    await consumer.start()
    records: list[ConsumerRecord[Any, Any]] = []
    try:
        partitions: list[TopicPartition] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while not partitions:
            for t in topics:
                for p in consumer.partitions_for_topic(t) or set():
                    partitions.append(TopicPartition(t, p))
            if not partitions:
                await consumer._client.force_metadata_update()
                if asyncio.get_running_loop().time() > deadline:
                    return records
                await asyncio.sleep(0.1)
        consumer.assign(partitions)
        await consumer.seek_to_beginning()
        done = until or (lambda recs: len(recs) >= min_records)
        loop = asyncio.get_running_loop()
        last_new = loop.time()
        while not done(records):
            left = deadline - loop.time()
            if left <= 0:
                break
            batch = await consumer.getmany(timeout_ms=int(min(left, 0.25) * 1000))
            for recs in batch.values():
                records.extend(recs)
            if batch:
                last_new = loop.time()
            elif idle_s is not None and loop.time() - last_new >= idle_s:
                break
        return records
    finally:
        await consumer.stop()
