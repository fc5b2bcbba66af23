"""Batch producing: group records by topic partition and send whole batches (aiokafka adapter).

``send_batch`` is several times faster than per-record ``send()`` on aiokafka; partitions are
chosen with the Java client's murmur2 partitioner (cached per key), so keys land where any
Kafka client would put them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from coinstream.runtime import KafkaProducer


class BatchSender:
    def __init__(self, producer: KafkaProducer) -> None:
        self._producer = producer
        self._partitions: dict[str, list[int]] = {}
        self._cache: dict[tuple[str, bytes], int] = {}
        self._partitioner = DefaultPartitioner()

    async def _partition(self, topic: str, key: bytes) -> int:
        cached = self._cache.get((topic, key))
        if cached is not None:
            return cached
        parts = self._partitions.get(topic)
        if parts is None:
            parts = sorted(await self._producer.raw.partitions_for(topic))
            self._partitions[topic] = parts
        partition: int = self._partitioner(key, parts, parts)
        if len(self._cache) < 100_000:
            self._cache[(topic, key)] = partition
        return partition

    async def send(self, records: Iterable[tuple[str, bytes, bytes]]) -> list[asyncio.Future[Any]]:
        """Queue ``(topic, key, value)`` records; return futures that resolve on broker acks."""
        raw = self._producer.raw
        batches: dict[tuple[str, int], Any] = {}
        futures: list[asyncio.Future[Any]] = []
        cache = self._cache
        for topic, key, value in records:
            partition = cache.get((topic, key))
            if partition is None:
                partition = await self._partition(topic, key)
            batch = batches.get((topic, partition))
            if batch is None:
                batch = batches[(topic, partition)] = raw.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                batch.close()
                futures.append(await raw.send_batch(batch, topic, partition=partition))
                batch = batches[(topic, partition)] = raw.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        for (topic, partition), batch in batches.items():
            batch.close()
            futures.append(await raw.send_batch(batch, topic, partition=partition))
        return futures
