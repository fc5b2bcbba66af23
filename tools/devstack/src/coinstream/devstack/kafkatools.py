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
) -> list[ConsumerRecord[Any, Any]]:
    """Read ``topic`` from the beginning (no group) until ``min_records`` (or ``until``) holds.

    Returns what was read when the condition holds or ``timeout`` passes, whichever is first;
    callers assert on the result. End offsets are not used (the local broker misreports them).
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
        while not done(records):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            batch = await consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            for recs in batch.values():
                records.extend(recs)
        return records
    finally:
        await consumer.stop()
