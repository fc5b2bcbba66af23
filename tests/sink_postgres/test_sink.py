"""The pipeline's failure behaviour with the real broker and the real PostgreSQL."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import asyncpg
import pytest
from prometheus_client import REGISTRY

from coinstream.devstack.kafkatools import read_topic
from coinstream.devstack.postgres import LocalPostgres
from coinstream.runtime import KafkaSettings
from coinstream.schemas import DeadLetter, Topics

from . import events
from .kit import (
    committed,
    eventually,
    fetchval,
    make_settings,
    produce,
    require_local_postgres,
    running_sink,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def count(url: str, table: str = "prices") -> int:
    return int(await fetchval(url, f"SELECT count(*) FROM {table}") or 0)


@pytest.mark.slow
async def test_postgres_restart_mid_stream_loses_nothing_and_keeps_group_membership(
    kafka_settings: KafkaSettings,
    topics: Topics,
    database_url: str,
    local_postgres: LocalPostgres | None,
) -> None:
    """While PostgreSQL is down the sink pauses and retries (same group generation); after the
    restart every event is stored exactly once."""
    pg = require_local_postgres(local_postgres)
    settings = make_settings(kafka_settings, database_url, batch_max_rows=100)
    await produce(kafka_settings, topics.prices, [events.trade(i) for i in range(1000)])
    assigned_before = metric("sink_postgres_rebalance_events_total", event="assigned")
    retries_before = sum(
        s.value
        for m in REGISTRY.collect()
        if m.name == "sink_postgres_db_retries"
        for s in m.samples
        if s.name.endswith("_total")
    )
    async with running_sink(settings):
        assert await eventually(lambda: count(database_url), lambda n: n >= 1000) == 1000
        await asyncio.to_thread(pg.stop, "immediate")  # a crash, not a polite shutdown
        try:
            await produce(
                kafka_settings, topics.prices, [events.trade(i) for i in range(1000, 3000)]
            )
            paused = await eventually(
                lambda: asyncio.sleep(0, metric("sink_postgres_consumption_paused")),
                lambda v: v == 1,
                timeout=20,
            )
            assert paused == 1
            assert metric("sink_postgres_db_up") == 0
            await asyncio.sleep(2 * kafka_settings.session_timeout_ms / 1000)  # > a session
        finally:
            await asyncio.to_thread(pg.start)
        assert await eventually(lambda: count(database_url), lambda n: n >= 3000, 60) == 3000
        offsets = await eventually(
            lambda: committed(kafka_settings, settings.group_id, topics.prices),
            lambda c: sum(c.values()) == 3000,
        )
        assert sum(offsets.values()) == 3000
        resumed = await eventually(
            lambda: asyncio.sleep(0, metric("sink_postgres_consumption_paused")),
            lambda v: v == 0,
            timeout=5,
        )
        assert resumed == 0
        assert metric("sink_postgres_db_up") == 1
    retries_after = sum(
        s.value
        for m in REGISTRY.collect()
        if m.name == "sink_postgres_db_retries"
        for s in m.samples
        if s.name.endswith("_total")
    )
    assert retries_after > retries_before
    # One assignment at start-up and no rejoin while the database was away.
    assert metric("sink_postgres_rebalance_events_total", event="assigned") == assigned_before + 1
    assert await fetchval(database_url, "SELECT count(DISTINCT event_id) FROM prices") == 3000


async def test_poison_row_goes_to_the_dlq_while_batch_mates_are_stored(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str
) -> None:
    """A record outside the contract and one that is not an event are dead-lettered with
    reason and origin; every other record of the batch is stored and all offsets commit."""
    good = [events.trade(i) for i in range(40)]
    poison = events.trade(999).model_copy(update={"price": Decimal("-5")})
    await produce(kafka_settings, topics.prices, [*good[:20], poison, b"{garbage", *good[20:]])
    settings = make_settings(kafka_settings, database_url, batch_max_wait_ms=500)
    async with running_sink(settings):
        letters = await read_topic(kafka_settings, topics.dlq, min_records=2, timeout=30)
        assert await eventually(lambda: count(database_url), lambda n: n >= 40) == 40
        offsets = await eventually(
            lambda: committed(kafka_settings, settings.group_id, topics.prices),
            lambda c: sum(c.values()) == 42,
        )
        assert sum(offsets.values()) == 42
    by_value = {r.value: DeadLetter.from_headers(r.headers) for r in letters}
    assert set(by_value) == {poison.to_json(), b"{garbage"}
    rejected = by_value[poison.to_json()]
    assert rejected.origin_topic == topics.prices and rejected.origin_offset >= 0
    assert "price" in rejected.reason and "must be positive" in rejected.reason
    assert rejected.service == "sink-postgres"
    assert by_value[b"{garbage"].reason.startswith("not a canonical event")
    assert await fetchval(database_url, "SELECT count(*) FROM prices WHERE price < 0") == 0


async def test_every_canonical_topic_is_stored(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str
) -> None:
    """Prices, candles, sentiment, metadata, feed status (both event types) and alerts."""
    await produce(kafka_settings, topics.prices, [events.trade(1), events.consolidated(1)])
    await produce(kafka_settings, topics.candles, [events.candle(0), events.candle(0, revision=1)])
    await produce(kafka_settings, topics.sentiment, [events.sentiment(0)])
    await produce(
        kafka_settings, topics.metadata, [events.asset(0), events.asset(5, description="new")]
    )
    await produce(kafka_settings, topics.feed_status, [events.feed_status(1), events.health(1)])
    await produce(kafka_settings, topics.alerts, [events.alert(1), events.alert(2, "resolved")])
    expected = {
        "prices": 1,
        "consolidated_prices": 1,
        "candles": 1,
        "sentiment": 1,
        "assets": 1,
        "metadata_history": 1,
        "feed_status": 1,
        "service_health": 1,
        "alert_events": 2,
    }
    async with running_sink(make_settings(kafka_settings, database_url)):

        async def counts() -> dict[str, int]:
            got = {t: await count(database_url, t) for t in expected}
            # The sink's own health reports land in service_health too; count the producer's.
            got["service_health"] = int(
                await fetchval(
                    database_url, "SELECT count(*) FROM service_health WHERE service='normalizer'"
                )
                or 0
            )
            return got

        got = await eventually(counts, lambda c: c == expected)
    assert got == expected
    assert await fetchval(database_url, "SELECT revision FROM candles") == 1
    assert await fetchval(database_url, "SELECT description FROM assets") == "new"


@pytest.mark.slow
async def test_partition_handover_flushes_and_commits_before_giving_up(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str
) -> None:
    """A second replica joins: the first flushes and commits before its partitions move, so no
    record is consumed twice and every event is stored once."""
    settings = make_settings(kafka_settings, database_url, batch_max_wait_ms=300)
    consumed_before = metric("sink_postgres_records_consumed_total", topic=topics.prices)
    await produce(kafka_settings, topics.prices, [events.trade(i) for i in range(2000)])
    async with running_sink(settings):
        assert await eventually(lambda: count(database_url), lambda n: n >= 2000) == 2000
        revoked_before = metric("sink_postgres_rebalance_events_total", event="revoked")
        async with running_sink(settings.model_copy()):
            await eventually(
                lambda: asyncio.sleep(
                    0, metric("sink_postgres_rebalance_events_total", event="revoked")
                ),
                lambda v: v > revoked_before,
                timeout=20,
            )
            await produce(
                kafka_settings, topics.prices, [events.trade(i) for i in range(2000, 4000)]
            )
            assert await eventually(lambda: count(database_url), lambda n: n >= 4000, 60) == 4000
            offsets = await eventually(
                lambda: committed(kafka_settings, settings.group_id, topics.prices),
                lambda c: sum(c.values()) == 4000,
            )
            assert sum(offsets.values()) == 4000
    consumed = metric("sink_postgres_records_consumed_total", topic=topics.prices) - consumed_before
    assert consumed == 4000  # nothing replayed after the handover


def batches_written() -> float:
    return metric("sink_postgres_batch_records_count")


async def test_a_batch_goes_as_soon_as_the_writer_is_idle_not_after_the_max_wait(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str
) -> None:
    """At a low rate, records are written once the consumer has caught up and the database is
    free, not ``BATCH_MAX_WAIT_MS`` later (here 60 s)."""
    settings = make_settings(kafka_settings, database_url, batch_max_wait_ms=60_000)
    async with running_sink(settings):
        await produce(kafka_settings, topics.prices, [events.trade(0)])
        assert await eventually(lambda: count(database_url), lambda n: n >= 1, 20) == 1
        await produce(kafka_settings, topics.prices, [events.trade(i) for i in range(1, 11)])
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await eventually(lambda: count(database_url), lambda n: n >= 11, 10) == 11
        assert loop.time() - started < 10
        offsets = await eventually(
            lambda: committed(kafka_settings, settings.group_id, topics.prices),
            lambda c: sum(c.values()) == 11,
            10,
        )
        assert sum(offsets.values()) == 11


async def test_while_the_writer_is_busy_records_gather_into_one_batch(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str
) -> None:
    """Flushing when idle keeps throughput: records consumed while a transaction waits (here
    on a table lock) go to the database together in the next batch, not one batch per poll."""
    settings = make_settings(
        kafka_settings, database_url, batch_max_wait_ms=60_000, batch_max_rows=5000
    )
    async with running_sink(settings):
        await produce(kafka_settings, topics.prices, [events.trade(0)])
        assert await eventually(lambda: count(database_url), lambda n: n >= 1, 20) == 1
        consumed0 = metric("sink_postgres_records_consumed_total", topic=topics.prices)
        batches0 = batches_written()
        blocker = await asyncpg.connect(database_url)
        try:
            lock = blocker.transaction()
            await lock.start()
            await blocker.execute("LOCK TABLE prices IN SHARE MODE")  # blocks the upsert
            await produce(kafka_settings, topics.prices, [events.trade(1)])
            await eventually(
                lambda: asyncio.sleep(
                    0, metric("sink_postgres_records_consumed_total", topic=topics.prices)
                ),
                lambda v: v >= consumed0 + 1,
                20,
            )
            await produce(kafka_settings, topics.prices, [events.trade(i) for i in range(2, 3002)])
            consumed = await eventually(
                lambda: asyncio.sleep(
                    0, metric("sink_postgres_records_consumed_total", topic=topics.prices)
                ),
                lambda v: v >= consumed0 + 3001,
                30,
            )
            assert consumed == consumed0 + 3001
            assert batches_written() == batches0  # the first one still waits for the lock
            await lock.rollback()
        finally:
            await blocker.close()
        assert await eventually(lambda: count(database_url), lambda n: n >= 3002, 30) == 3002
        assert batches_written() - batches0 == 2
