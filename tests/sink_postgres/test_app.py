"""The service against the real broker and the real PostgreSQL, run in this process."""

from __future__ import annotations

import asyncio

import pytest

from coinstream.devstack.ports import free_port
from coinstream.devstack.postgres import LocalPostgres
from coinstream.runtime import KafkaSettings
from coinstream.schemas import Topics
from coinstream.sink_postgres import app

from .events import trade
from .kit import committed, eventually, fetchval, make_settings, produce, running_sink

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_price_events_are_stored_once_and_offsets_committed_after(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str
) -> None:
    """Migrates at start-up, stores every PriceEvent once (duplicates absorbed), commits."""
    events = [trade(i, symbol=("BTC-USDT", "ETH-USDT", "PEPE-USDT")[i % 3]) for i in range(300)]
    await produce(kafka_settings, topics.prices, events + events[:50])  # 50 duplicates
    settings = make_settings(kafka_settings, database_url)
    async with running_sink(settings):
        n = await eventually(
            lambda: fetchval(database_url, "SELECT count(*) FROM prices"), lambda v: v >= 300
        )
        assert n == 300
        offsets = await eventually(
            lambda: committed(kafka_settings, settings.group_id, topics.prices),
            lambda c: sum(c.values()) == 350,
        )
    assert sum(offsets.values()) == 350
    assert await fetchval(database_url, "SELECT count(DISTINCT event_id) FROM prices") == 300


@pytest.mark.slow
async def test_a_database_that_starts_late_is_waited_for(
    kafka_settings: KafkaSettings,
    topics: Topics,
    database_url: str,
    local_postgres: LocalPostgres | None,
) -> None:
    """Migrations are retried until PostgreSQL is up; then events flow as usual."""
    if local_postgres is None:
        pytest.skip("stops PostgreSQL: only possible with the local server")
    await produce(kafka_settings, topics.prices, [trade(i) for i in range(50)])
    await asyncio.to_thread(local_postgres.stop)
    try:
        settings = make_settings(kafka_settings, database_url)
        async with running_sink(settings) as task:
            await asyncio.sleep(1.5)
            assert not task.done()  # still waiting, not crashed
            await asyncio.to_thread(local_postgres.start)
            n = await eventually(
                lambda: fetchval(database_url, "SELECT count(*) FROM prices"), lambda v: v >= 50
            )
            assert n == 50
    finally:
        if not (local_postgres.data_dir / "postmaster.pid").exists():
            await asyncio.to_thread(local_postgres.start)


async def test_stop_while_the_database_is_unreachable_exits_cleanly(
    kafka_settings: KafkaSettings,
) -> None:
    """SIGTERM before the database ever answered: main returns without error."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    settings = make_settings(kafka_settings, url, connect_timeout_s=0.5)
    stop = asyncio.Event()
    task = asyncio.create_task(app.main(settings, stop))
    await asyncio.sleep(0.5)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 10)  # raises if main failed
