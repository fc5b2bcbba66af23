"""Kafka side: raw envelopes, dead letters and feed-status events (thin adapter).

An envelope is published until the broker acknowledges it: transient failures (broker down or
slow) are retried with capped backoff, which also holds back the endpoint's next poll (no API
credits are spent on responses that cannot be stored). An envelope refused for itself (a
response larger than ``KAFKA_MAX_RECORD_BYTES``, say) is dead-lettered in bounded form with
the reason, never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from pydantic import JsonValue

from coinstream.ingest_rest.source import Request
from coinstream.runtime import (
    Backoff,
    DeadLetterPublisher,
    KafkaProducer,
    RecordTooLargeError,
    describe,
    retry_transient,
    utc_now,
)
from coinstream.schemas import FeedStatusEvent, RawEnvelope, RequestMeta, deterministic_id
from coinstream.schemas.events import FeedStatus

log = logging.getLogger(__name__)


def build_envelope(
    source: str,
    channel: str,
    url: str,
    params: dict[str, str],
    status: int,
    latency_ms: float,
    attempt: int,
    payload: str,
) -> RawEnvelope:
    """A raw envelope for one response; ``params`` must already be free of secrets."""
    return RawEnvelope(
        envelope_id=uuid.uuid4().hex,
        source=source,
        channel=channel,
        received_at=utc_now(),
        payload=payload,
        request=RequestMeta(
            url=url,
            params=dict[str, JsonValue](params),
            status=status,
            latency_ms=max(0.0, latency_ms),
            attempt=attempt,
        ),
    )


def envelope_key(source: str, channel: str) -> bytes:
    return f"{source}:{channel}".encode()


class Publisher:
    """Publishes envelopes (waiting for acks), dead letters and feed-status events."""

    def __init__(self, producer: KafkaProducer, service: str, timeout_s: float = 30.0) -> None:
        self._producer = producer
        self._topics = producer.settings.topics
        self._dlq = DeadLetterPublisher(producer, service)
        self._timeout = timeout_s

    def raw_topic(self, source: str) -> str:
        return self._topics.raw(source)

    async def envelope(self, envelope: RawEnvelope) -> bool:
        """Send and wait for the broker's acknowledgement (acks=all), retrying transient
        failures; False if the envelope was refused for itself and dead-lettered instead."""
        value = envelope.to_json()
        key = envelope_key(envelope.source, envelope.channel)
        limit = self._producer.settings.max_record_bytes
        if len(value) + len(key) > limit:
            error: Exception = RecordTooLargeError(len(value) + len(key), limit)
        else:

            async def send() -> None:
                fut = await self._producer.send(self.raw_topic(envelope.source), value, key=key)
                await self._ack(fut)

            try:
                await retry_transient(
                    send, what="publishing an envelope", backoff=Backoff(0.2, maximum=30.0)
                )
                return True
            except Exception as exc:  # refused for itself: dead-letter it, never drop it
                error = exc
        reason = f"the {envelope.channel} response could not be published: {describe(error)}"
        await self.dead_letter(envelope, reason, error)
        return False

    async def _ack(self, fut: asyncio.Future[Any]) -> None:
        """Wait for the broker's acknowledgement (``asyncio.timeout`` keeps cancellation)."""
        async with asyncio.timeout(self._timeout):
            await asyncio.shield(fut)  # never cancel the producer's own delivery future

    async def dead_letter(
        self, envelope: RawEnvelope, reason: str, error: BaseException | str
    ) -> None:
        fut = await self._dlq.publish(
            envelope.to_json(),
            reason=reason,
            error=error,
            origin_topic=self.raw_topic(envelope.source),
            key=envelope_key(envelope.source, envelope.channel),
        )
        await self._ack(fut)

    async def feed_status(
        self,
        source: str,
        status: FeedStatus,
        cause: str,
        channel: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Best effort: a feed-status event that cannot be sent is logged, never raised."""
        now = utc_now()
        event = FeedStatusEvent(
            event_id=deterministic_id("feed_status", source, status, channel, now.isoformat()),
            event_time=now,
            received_at=now,
            source=source,
            status=status,
            channel=channel,
            cause=cause,
            details=details or {},
        )
        try:
            fut = await self._producer.send(
                self._topics.feed_status, event.to_json(), key=event.key
            )
            await self._ack(fut)
        except Exception as exc:
            log.warning("feed status not sent", extra={"source": source, "error": repr(exc)})


def request_url(base_url: str, request: Request) -> str:
    return f"{base_url}{request.path}"
