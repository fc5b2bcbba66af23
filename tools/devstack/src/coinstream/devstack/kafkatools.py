"""Small Kafka helpers for tests, the demo and benchmarks (reading topics back, counting)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord, TopicPartition

from coinstream.runtime.kafka import connection_kwargs
from coinstream.runtime.settings import KafkaSettings


async def topic_partitions(settings: KafkaSettings, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of those of ``topics`` that exist now (none are created by asking).

    Asks for the metadata of all topics (a request that never auto-creates one) through the
    admin client's public ``describe_topics``; a topic the broker reports with an error (for
    example, still being created) is left out, so callers poll until what they need is there.
    """
    wanted = set(topics)
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    await admin.start()
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    return sorted(
        TopicPartition(t["topic"], p["partition"])
        for t in described
        if t["topic"] in wanted and not t["error_code"]
        for p in t["partitions"]
    )


async def wait_for_partitions(
    settings: KafkaSettings, topics: Iterable[str], timeout: float | None = None
) -> list[TopicPartition]:
    """``topic_partitions`` once at least one partition exists (``[]`` after ``timeout``)."""
    wanted = list(topics)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    while True:
        found = await topic_partitions(settings, wanted)
        if found or (deadline is not None and loop.time() > deadline):
            return found
        await asyncio.sleep(0.1)


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
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    records: list[ConsumerRecord[Any, Any]] = []
    partitions = await wait_for_partitions(settings, topics, timeout)
    if not partitions:
        return records
    consumer = AIOKafkaConsumer(
        **connection_kwargs(settings),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id=f"reader-{uuid.uuid4().hex[:8]}",
    )
    await consumer.start()
    try:
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
