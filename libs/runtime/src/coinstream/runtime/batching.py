"""Batch producing with per-record failure isolation (aiokafka adapter).

``send_batch`` is several times faster than per-record ``send()`` on aiokafka, so records are
grouped per topic partition (chosen with the Java client's murmur2 partitioner, cached per
key, so keys land where any Kafka client would put them).

``deliver()`` is the at-least-once path every stage uses: it sends everything, waits for the
acknowledgements and classifies each failure (``failures.is_transient``). Transient failures
(the broker is down or slow) are retried with backoff, for as long as it takes, resending only
the batches that failed. A batch that fails for any other reason is split into its records,
each sent alone; the records that still fail are returned with their error for the caller
to dead-letter, and their batch-mates are delivered. A record larger than
``max_record_bytes`` is returned at once without a round trip.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from coinstream.runtime.backoff import Backoff
from coinstream.runtime.errors import CoinstreamError
from coinstream.runtime.failures import describe, is_transient
from coinstream.runtime.kafka import Headers, KafkaProducer
from coinstream.runtime.retry import sleep_unless_stopped

log = logging.getLogger(__name__)

OutRecord = tuple[str, bytes | None, bytes | None] | tuple[str, bytes | None, bytes | None, Headers]
"""``(topic, key, value)`` or ``(topic, key, value, headers)``."""

KEY_CACHE_MAX = 100_000


class RecordTooLargeError(CoinstreamError):
    """A record is larger than the producer may send (``KAFKA_MAX_RECORD_BYTES``)."""

    retriable = False

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"record is {size} bytes, more than the {limit} bytes a record may have "
            "(KAFKA_MAX_RECORD_BYTES, below the broker's message.max.bytes)"
        )
        self.size = size
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Refused:
    """A record the broker (or the size limit) refused for itself, with the reason."""

    index: int
    record: OutRecord
    error: BaseException

    @property
    def reason(self) -> str:
        return f"could not be produced to {self.record[0]}: {describe(self.error)}"


def record_size(record: OutRecord) -> int:
    key, value = record[1], record[2]
    size = len(key or b"") + len(value or b"")
    if len(record) == 4:
        size += sum(len(k) + len(v) for k, v in record[3])  # type: ignore[misc]
    return size


class BatchSender:
    """Sends records in per-partition batches through a started ``KafkaProducer``."""

    def __init__(self, producer: KafkaProducer, max_record_bytes: int | None = None) -> None:
        self._producer = producer
        self.max_record_bytes = max_record_bytes or producer.settings.max_record_bytes
        self._partitions: dict[str, list[int]] = {}
        self._cache: dict[tuple[str, bytes], int] = {}
        self._partitioner = DefaultPartitioner()

    async def partition(self, topic: str, key: bytes | None) -> int:
        """The partition Kafka's default partitioner picks for ``key`` (random for none)."""
        if key is not None:
            cached = self._cache.get((topic, key))
            if cached is not None:
                return cached
        parts = self._partitions.get(topic)
        if parts is None:
            parts = sorted(await self._producer.raw.partitions_for(topic))
            self._partitions[topic] = parts
        partition: int = self._partitioner(key, parts, parts)
        if key is not None and len(self._cache) < KEY_CACHE_MAX:
            self._cache[(topic, key)] = partition
        return partition

    async def send(self, records: Iterable[OutRecord]) -> list[asyncio.Future[Any]]:
        """Queue records in batches; return futures that resolve on broker acks (fast path,
        no isolation: use ``deliver()`` unless you handle failures yourself)."""
        futures, _ = await self._send(list(enumerate(records)))
        return futures

    async def _send(
        self, items: Sequence[tuple[int, OutRecord]]
    ) -> tuple[list[asyncio.Future[Any]], list[list[int]]]:
        """Send ``(index, record)`` items; return each batch's future and its indices."""
        raw = self._producer.raw
        batches: dict[tuple[str, int], tuple[Any, list[int]]] = {}
        futures: list[asyncio.Future[Any]] = []
        members: list[list[int]] = []
        cache = self._cache
        for i, record in items:
            topic, key, value = record[0], record[1], record[2]
            headers = list(record[3]) if len(record) == 4 else []  # type: ignore[misc]
            partition = cache.get((topic, key)) if key is not None else None
            if partition is None:
                partition = await self.partition(topic, key)
            entry = batches.get((topic, partition))
            if entry is None:
                entry = batches[(topic, partition)] = (raw.create_batch(), [])
            batch, idx = entry
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                batch.close()
                futures.append(await raw.send_batch(batch, topic, partition=partition))
                members.append(idx)
                batch, idx = raw.create_batch(), []
                batches[(topic, partition)] = (batch, idx)
                batch.append(key=key, value=value, timestamp=None, headers=headers)
            idx.append(i)
        for (topic, partition), (batch, idx) in batches.items():
            batch.close()
            futures.append(await raw.send_batch(batch, topic, partition=partition))
            members.append(idx)
        return futures, members

    async def deliver(
        self,
        records: Sequence[OutRecord],
        *,
        stop: asyncio.Event | None = None,
        backoff: Backoff | None = None,
    ) -> list[Refused]:
        """Deliver every record at least once; return the ones refused for themselves.

        Transient failures are retried until they pass (``StoppedError`` if ``stop`` is set
        meanwhile: then nothing may be committed). See the module docstring.
        """
        refused: list[Refused] = []
        pending: list[tuple[int, OutRecord]] = []
        limit = self.max_record_bytes
        for i, record in enumerate(records):
            size = record_size(record)
            if size > limit:
                refused.append(Refused(i, record, RecordTooLargeError(size, limit)))
            else:
                pending.append((i, record))
        backoff = backoff or Backoff(initial=0.2, maximum=10.0)
        while pending:
            retry: list[tuple[int, OutRecord]] = []
            error: BaseException | None = None
            try:
                futures, members = await self._send(pending)
            except Exception as exc:  # refused before sending (closed producer, metadata)
                if not is_transient(exc):
                    raise
                futures, members, retry, error = [], [], pending, exc
            results = await asyncio.gather(*futures, return_exceptions=True)
            by_index = dict(pending)
            for result, idx in zip(results, members, strict=True):
                if not isinstance(result, BaseException):
                    continue
                if is_transient(result):
                    retry += [(i, by_index[i]) for i in idx]
                    error = result
                    continue
                lone, failed = await self._isolate([(i, by_index[i]) for i in idx])
                refused += failed
                if lone:
                    retry += lone
                    error = error or result
            if retry:
                delay = backoff.next_delay()
                log.warning(
                    "produce failed; retrying",
                    extra={
                        "error": describe(error) if error else "",
                        "records": len(retry),
                        "retry_in_s": round(delay, 3),
                    },
                )
                await sleep_unless_stopped(delay, stop)
            pending = sorted(retry)
        return sorted(refused, key=lambda r: r.index)

    async def _isolate(
        self, items: list[tuple[int, OutRecord]]
    ) -> tuple[list[tuple[int, OutRecord]], list[Refused]]:
        """Send each record alone: (records that failed transiently, records refused)."""
        raw = self._producer.raw
        transient: list[tuple[int, OutRecord]] = []
        refused: list[Refused] = []
        for i, record in items:
            topic, key, value = record[0], record[1], record[2]
            headers = list(record[3]) if len(record) == 4 else []  # type: ignore[misc]
            try:
                partition = await self.partition(topic, key)
                fut = await raw.send(topic, value, key=key, headers=headers, partition=partition)
                await fut
            except Exception as exc:
                if is_transient(exc):
                    transient.append((i, record))
                else:
                    refused.append(Refused(i, record, exc))
        if refused:
            log.warning(
                "records refused by the broker",
                extra={"count": len(refused), "error": describe(refused[0].error)},
            )
        return transient, refused
