"""I/O helpers for sink-postgres tests: produce events, run the sink, wait for rows."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from coinstream.devstack.kafkatools import wait_for_partitions
from coinstream.devstack.postgres import LocalPostgres
from coinstream.runtime import HttpSettings, KafkaProducer, KafkaSettings
from coinstream.runtime.kafka import connection_kwargs
from coinstream.schemas import Event
from coinstream.sink_postgres import app
from coinstream.sink_postgres.settings import SinkPostgresSettings

T = TypeVar("T")


def make_settings(
    kafka: KafkaSettings, database_url: str, **overrides: Any
) -> SinkPostgresSettings:
    """Sink settings for tests: short batch waits and retries, any free HTTP port."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka": kafka,
        "http": HttpSettings(host="127.0.0.1", port=0),
        "group_id": f"sink-{uuid.uuid4().hex[:8]}",
        "batch_max_wait_ms": 100,
        "health_interval_s": 60,
        "retry_initial_s": 0.05,
        "retry_max_s": 0.5,
        "revoke_flush_timeout_s": 5,
        "shutdown_timeout_s": 15,
        "log_format": "text",
    }
    values.update(overrides)
    return SinkPostgresSettings(**values)


async def produce(kafka: KafkaSettings, topic: str, events: Iterable[Event | bytes]) -> int:
    """Publish events (or raw bytes) keyed like the real producers; wait for every ack."""
    n = 0
    async with KafkaProducer(kafka) as producer:
        futures = []
        for e in events:
            if isinstance(e, bytes):
                futures.append(await producer.send(topic, e, key=b"raw"))
            else:
                futures.append(await producer.send(topic, e.to_json(), key=e.key))
            n += 1
        await asyncio.gather(*futures)
    return n


@contextlib.asynccontextmanager
async def running_sink(settings: SinkPostgresSettings) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``app.main`` in this process; on exit set stop and wait for a clean drain."""
    stop = asyncio.Event()
    task = asyncio.create_task(app.main(settings, stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def fetchval(database_url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(sql, *args)
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()


async def eventually(
    probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 30.0
) -> T:
    """Poll ``probe`` until ``ok`` holds or ``timeout`` passes; return the last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            value = await probe()
        except (OSError, asyncpg.PostgresError):
            value = None  # type: ignore[assignment]
        if value is not None and ok(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.1)


async def committed(kafka: KafkaSettings, group_id: str, topic: str) -> dict[int, int]:
    """The group's committed offsets per partition of ``topic`` (no group join)."""
    consumer = AIOKafkaConsumer(
        **connection_kwargs(kafka), group_id=group_id, enable_auto_commit=False
    )
    parts = await wait_for_partitions(kafka, [topic])
    await consumer.start()
    try:
        out = {}
        for tp in parts:
            off = await consumer.committed(tp)
            out[tp.partition] = off if off is not None else 0
        return out
    finally:
        await consumer.stop()


def require_local_postgres(pg: LocalPostgres | None) -> LocalPostgres:
    """For tests that stop PostgreSQL: skip (with the reason) on an external server."""
    if pg is None:
        pytest.skip("stops and starts PostgreSQL: only possible with the local server")
    return pg
