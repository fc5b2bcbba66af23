"""Wiring and lifespan of sink-postgres."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from coinstream.runtime import (
    Backoff,
    DeadLetterPublisher,
    HealthReporter,
    HealthServer,
    KafkaConsumer,
    KafkaProducer,
    ensure_topics,
)
from coinstream.schemas import Topics
from coinstream.sink_postgres.migrations import migrate
from coinstream.sink_postgres.settings import SinkPostgresSettings
from coinstream.sink_postgres.sink import Sink
from coinstream.sink_postgres.store import Store
from coinstream.sink_postgres.timescale import TimescalePolicy, apply_timescale

log = logging.getLogger(__name__)

SERVICE = "sink-postgres"


def topic_names(settings: SinkPostgresSettings) -> list[str]:
    topics: Topics = settings.kafka.topics
    return [getattr(topics, name) for name in settings.topics]


async def migrate_once(settings: SinkPostgresSettings) -> bool:
    """Apply migrations (and TimescaleDB setup); return whether TimescaleDB is in use."""
    conn = await asyncpg.connect(
        settings.database_url.get_secret_value(), timeout=settings.connect_timeout_s
    )
    try:
        applied = await migrate(conn)
        log.info("schema up to date", extra={"applied_now": [m.version for m in applied]})
        if settings.timescale == "off":
            return False
        policy = TimescalePolicy(
            chunk_interval=settings.timescale_chunk_interval,
            compress_after=settings.timescale_compress_after,
            retention=settings.timescale_retention,
        )
        return await apply_timescale(conn, policy)
    finally:
        await conn.close()


async def migrate_until_done(settings: SinkPostgresSettings, stop: asyncio.Event) -> bool | None:
    """Retry migrations with backoff while the database is unreachable (it may start late).

    Returns whether TimescaleDB is in use, or ``None`` if ``stop`` was set first.
    """
    backoff = Backoff(initial=settings.retry_initial_s, maximum=settings.retry_max_s)
    while True:
        try:
            return await migrate_once(settings)
        except (OSError, TimeoutError, asyncpg.CannotConnectNowError) as exc:
            delay = backoff.next_delay()
            log.warning(
                "database not reachable for migrations; retrying",
                extra={"error": repr(exc), "retry_in_s": round(delay, 3)},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return None


async def main(settings: SinkPostgresSettings, stop: asyncio.Event) -> None:
    """Serve health, migrate, then consume until ``stop``; drain, commit and close."""
    health = HealthServer(settings.http)
    state = {"schema": "migrating"}
    health.add_check("schema", lambda: (state["schema"] == "ready", state["schema"]))
    async with health:
        if settings.migrate_on_start:
            timescale = await migrate_until_done(settings, stop)
            if timescale is None:
                return  # stopped before the database came up
            state["schema"] = "ready" + (" (timescaledb)" if timescale else "")
        else:
            state["schema"] = "ready (not migrated by this instance)"
        names = topic_names(settings)
        if settings.kafka.create_topics:
            wanted = {*names, settings.kafka.topics.dlq}
            await ensure_topics(
                settings.kafka, [s for s in settings.kafka.topics.specs() if s.name in wanted]
            )
        async with KafkaProducer(settings.kafka) as producer:
            store = Store(
                settings.database_url.get_secret_value(),
                connect_timeout_s=settings.connect_timeout_s,
                statement_timeout_ms=settings.statement_timeout_ms,
            )
            sink = Sink(settings, store, DeadLetterPublisher(producer, service=SERVICE))
            health.add_check("pipeline", sink.readiness)
            consumer = KafkaConsumer(
                settings.kafka, names, settings.group_id, listener=sink.listener
            )
            reporter = HealthReporter(
                producer,
                health,
                SERVICE,
                settings.health_interval_s,
                counters=sink.counters,
                instance=settings.instance_id,
            )
            async with store, consumer, reporter:
                sink.attach(consumer)
                log.info("consuming", extra={"topics": names, "group_id": settings.group_id})
                await sink.run(stop)
                health.stopping = True
        log.info("drained and committed; closing")
