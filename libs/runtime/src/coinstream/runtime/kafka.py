"""Kafka adapters: producer and consumer with one lifecycle contract, topic creation, DLQ.

Both wrappers are async context managers with an idempotent ``aclose()``; a closed wrapper
cannot be reopened. The producer flushes on close. Batch sending with per-record failure
isolation is in ``batching``, dead letters in ``deadletters``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable, Sequence
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import RecordMetadata, TopicPartition

from coinstream.runtime.errors import ResourceClosedError, TopicCreationError
from coinstream.runtime.settings import KafkaSettings
from coinstream.schemas import TopicSpec

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]


def connection_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    """Connection options shared by producer, consumer and admin client."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "request_timeout_ms": settings.request_timeout_ms,
        "security_protocol": settings.security_protocol,
    }
    if settings.client_id:
        kwargs["client_id"] = settings.client_id
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = ssl.create_default_context()
    if settings.sasl_mechanism:
        kwargs["sasl_mechanism"] = settings.sasl_mechanism
        kwargs["sasl_plain_username"] = settings.sasl_username
        if settings.sasl_password is not None:
            kwargs["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    return kwargs


class _Lifecycle:
    """One lifecycle for every wrapper: new -> open -> closed, never reopened.

    Subclasses implement ``_open()`` and ``_close()``; ``start()`` and ``aclose()`` are
    idempotent, and ``async with`` starts and closes.
    """

    _state: str = "new"

    def _check_open(self) -> None:
        if self._state == "closed":
            raise ResourceClosedError(f"{type(self).__name__} is closed; create a new one")

    async def _open(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self._check_open()
        if self._state == "new":
            await self._open()
            self._state = "open"

    async def aclose(self) -> None:
        """Close; safe to call more than once."""
        if self._state == "open":
            self._state = "closed"
            await self._close()
        self._state = "closed"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class KafkaProducer(_Lifecycle):
    """An ``AIOKafkaProducer`` with acks=all, bounded buffering and flush-on-close."""

    def __init__(self, settings: KafkaSettings, **overrides: Any) -> None:
        options: dict[str, Any] = {
            **connection_kwargs(settings),
            "acks": "all",
            "enable_idempotence": settings.enable_idempotence,
            "linger_ms": settings.linger_ms,
            "max_batch_size": settings.max_batch_size,
            "compression_type": settings.compression_type,
        }
        options.update(overrides)
        self._producer = AIOKafkaProducer(**options)
        self.settings = settings

    @property
    def raw(self) -> AIOKafkaProducer:
        """The underlying aiokafka producer, for batch APIs (``create_batch``/``send_batch``)."""
        return self._producer

    async def _open(self) -> None:
        await self._producer.start()

    async def _close(self) -> None:
        """Flush buffered records, then stop."""
        try:
            await self._producer.flush()
        finally:
            await self._producer.stop()

    async def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Queue a record; await the returned future for the broker's acknowledgement."""
        self._check_open()
        fut: asyncio.Future[RecordMetadata] = await self._producer.send(
            topic, value, key=key, headers=list(headers or [])
        )
        return fut

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Headers | None = None,
    ) -> RecordMetadata:
        self._check_open()
        return await self._producer.send_and_wait(
            topic, value, key=key, headers=list(headers or [])
        )

    async def flush(self) -> None:
        await self._producer.flush()


class KafkaConsumer(_Lifecycle):
    """A group consumer with manual commits that starts from the earliest offset.

    ``earliest`` is deliberate: a new group must not skip records, and the local broker
    reports wrong end offsets (so ``latest`` is unreliable there).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topics: Iterable[str],
        group_id: str,
        listener: ConsumerRebalanceListener | None = None,
        **overrides: Any,
    ) -> None:
        options: dict[str, Any] = {
            **connection_kwargs(settings),
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": settings.session_timeout_ms,
            "heartbeat_interval_ms": settings.heartbeat_interval_ms,
            "max_poll_interval_ms": settings.max_poll_interval_ms,
            "fetch_max_wait_ms": settings.fetch_max_wait_ms,
            "isolation_level": "read_committed",
        }
        options.update(overrides)
        self._topics = list(topics)
        self._listener = listener
        self._consumer = AIOKafkaConsumer(**options)

    @property
    def raw(self) -> AIOKafkaConsumer:
        return self._consumer

    async def _open(self) -> None:
        try:
            await self._consumer.start()
        except BaseException:
            # a consumer whose start failed (broker unreachable) still holds its client
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            raise
        if self._listener is not None:
            self._consumer.subscribe(self._topics, listener=self._listener)
        else:
            self._consumer.subscribe(self._topics)

    async def _close(self) -> None:
        """Leave the group and stop. Commits nothing by itself."""
        await self._consumer.stop()

    async def getmany(
        self, timeout_ms: int = 500, max_records: int | None = None
    ) -> dict[TopicPartition, list[Any]]:
        self._check_open()
        batch: dict[TopicPartition, list[Any]] = await self._consumer.getmany(
            timeout_ms=timeout_ms, max_records=max_records
        )
        return batch

    async def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        """Commit ``offsets`` (next offset to read, per partition) or the current position."""
        self._check_open()
        if offsets is None:
            await self._consumer.commit()
        elif offsets:
            await self._consumer.commit(offsets)


def refused_topics(answer: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """The topics a CreateTopics answer (``response.to_object()``) refused, with the broker's
    error and whether it is retriable. "Already exists" is not a refusal: another replica
    (or an operator) created the topic first."""
    refused: dict[str, tuple[str, bool]] = {}
    for entry in answer.get("topic_errors", []):
        code = entry["error_code"]
        if code == 0:
            continue
        error = kafka_errors.for_code(code)
        if error is TopicAlreadyExistsError:
            continue
        message = entry.get("error_message") or error.description
        refused[entry["topic"]] = (f"{error.__name__} (error {code}): {message}", error.retriable)
    return refused


async def ensure_topics(settings: KafkaSettings, specs: Iterable[TopicSpec]) -> list[str]:
    """Create missing topics with their partitions and configs; return the names created.

    Topics are created explicitly because auto-created topics get broker defaults
    (4 partitions on the local broker, no compaction). The broker answers per topic and
    aiokafka does not raise for those answers, so each one is checked: a refused topic raises
    ``TopicCreationError``; one that already exists (created concurrently) is not reported
    as created.
    """
    admin = AIOKafkaAdminClient(**connection_kwargs(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name=s.name,
                num_partitions=s.partitions if s.partitions else settings.topic_partitions,
                replication_factor=settings.replication_factor,
                topic_configs=dict(s.configs),
            )
            for s in specs
            if s.name not in existing
        ]
        if not new:
            return []
        answer = (await admin.create_topics(new)).to_object()
        refused = refused_topics(answer)
        if refused:
            raise TopicCreationError(refused)
        created = {e["topic"] for e in answer.get("topic_errors", []) if e["error_code"] == 0}
        return [t.name for t in new if t.name in created]
    finally:
        await admin.close()
