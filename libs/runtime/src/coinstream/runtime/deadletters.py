"""Dead letters: failed records on ``coinstream.dlq.v1`` with reason and origin headers.

Every stage sends what it cannot process here and moves on. A dead letter too large to be
produced as it is (the record was refused for its size, say) is sent in bounded form (its
first bytes, size and digest: ``coinstream.schemas.dead_letters.bounded_value``), so a dead
letter is never refused in turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka.structs import RecordMetadata

from coinstream.runtime.backoff import Backoff
from coinstream.runtime.batching import BatchSender, OutRecord
from coinstream.runtime.kafka import Headers, KafkaProducer
from coinstream.runtime.settings import KafkaSettings
from coinstream.schemas import DeadLetter
from coinstream.schemas.dead_letters import bounded_value, digest

log = logging.getLogger(__name__)

HEADROOM = 16 * 1024
"""Room left under ``max_record_bytes`` for the dead-letter headers."""
MAX_KEY_BYTES = 1024


def dead_letter_record(
    settings: KafkaSettings,
    service: str,
    value: bytes | None,
    *,
    reason: str,
    error: BaseException | str,
    origin_topic: str,
    origin_partition: int = -1,
    origin_offset: int = -1,
    key: bytes | None = None,
    headers: Headers = (),
) -> OutRecord:
    """The ``coinstream.dlq.v1`` record for a failed one: its bytes (or their bounded form,
    when they would not fit in ``settings.max_record_bytes``) with the dead-letter headers."""
    error_class = error if isinstance(error, str) else type(error).__name__
    original_size = original_digest = None
    limit = max(1024, settings.max_record_bytes - HEADROOM)
    size = len(value or b"") + len(key or b"") + sum(len(k) + len(v) for k, v in headers)
    if size > limit:
        original_size = len(value or b"")
        original_digest = digest(value or b"")
        value = bounded_value(value or b"")
        headers = [(k, v[:1024]) for k, v in list(headers)[:20]]
    if key is not None and len(key) > MAX_KEY_BYTES:
        key = key[:MAX_KEY_BYTES]
    if value is None and key is None:
        value = b""  # a record needs a key or a value
    letter = DeadLetter(
        reason=reason,
        error_class=error_class,
        origin_topic=origin_topic,
        origin_partition=origin_partition,
        origin_offset=origin_offset,
        service=service,
        original_size=original_size,
        original_digest=original_digest,
    )
    log.warning(
        "dead letter",
        extra={
            "reason": reason[:1000],
            "error_class": error_class,
            "origin_topic": origin_topic,
            "origin_partition": origin_partition,
            "origin_offset": origin_offset,
            "bounded": original_size is not None,
        },
    )
    return (settings.topics.dlq, key, value, [*headers, *letter.to_headers()])  # type: ignore[return-value]


class DeadLetterPublisher:
    """Builds and publishes dead letters with reason and origin headers."""

    def __init__(self, producer: KafkaProducer, service: str) -> None:
        self._producer = producer
        self._service = service
        self.topic = producer.settings.topics.dlq
        self._sender: BatchSender | None = None
        self.published = 0
        self.unpublishable = 0

    def letter(
        self,
        value: bytes | None,
        *,
        reason: str,
        error: BaseException | str,
        origin_topic: str,
        origin_partition: int = -1,
        origin_offset: int = -1,
        key: bytes | None = None,
        headers: Headers = (),
    ) -> OutRecord:
        """The dead-letter record for a failed one (bounded if it is too large)."""
        return dead_letter_record(
            self._producer.settings,
            self._service,
            value,
            reason=reason,
            error=error,
            origin_topic=origin_topic,
            origin_partition=origin_partition,
            origin_offset=origin_offset,
            key=key,
            headers=headers,
        )

    async def publish(
        self,
        value: bytes | None,
        *,
        reason: str,
        error: BaseException | str,
        origin_topic: str,
        origin_partition: int = -1,
        origin_offset: int = -1,
        key: bytes | None = None,
        headers: Headers = (),
    ) -> asyncio.Future[RecordMetadata]:
        """Queue one dead letter; await the returned future to know it is stored."""
        record = self.letter(
            value,
            reason=reason,
            error=error,
            origin_topic=origin_topic,
            origin_partition=origin_partition,
            origin_offset=origin_offset,
            key=key,
            headers=headers,
        )
        self.published += 1
        topic, k, v, h = record  # type: ignore[misc]
        return await self._producer.send(topic, v, key=k, headers=h)

    async def deliver(
        self,
        letters: Sequence[OutRecord],
        *,
        stop: asyncio.Event | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        """Deliver built letters (``letter()``), retrying transient failures until stored."""
        if not letters:
            return
        if self._sender is None:
            self._sender = BatchSender(self._producer)
        refused = await self._sender.deliver(letters, stop=stop, backoff=backoff)
        self.published += len(letters) - len(refused)
        for r in refused:  # cannot happen for bounded letters unless the DLQ topic refuses all
            self.unpublishable += 1
            log.error("dead letter refused by the broker", extra={"error": r.reason})
