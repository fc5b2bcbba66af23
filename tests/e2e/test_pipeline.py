"""The whole path with real parts: simulator -> ingest-ws -> Kafka -> normalizer -> Kafka ->
sink-postgres -> PostgreSQL, and alerts -> the simulator's Slack webhook.

Every service runs as its own process (``python -m coinstream.<service>``), configured only
through environment variables, exactly as ``make demo`` runs them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest

from coinstream.devstack.kafkatools import read_topic
from coinstream.devstack.stack import ServiceProcess, StackConfig, stop_all
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaSettings
from coinstream.schemas import AlertEvent, Topics, decode_event

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    ok: Callable[[T], bool],
    timeout: float,
    what: str,
    procs: list[ServiceProcess],
) -> T:
    """Poll ``probe`` until ``ok``; on timeout fail with the services' log tails."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if ok(value):
            return value
        dead = [p for p in procs if not p.running]
        if dead or asyncio.get_running_loop().time() > deadline:
            logs = "\n".join(f"--- {p.name} (running={p.running})\n{p.log_tail(20)}" for p in procs)
            pytest.fail(f"timed out waiting for {what}; last value {value!r}\n{logs}")
        await asyncio.sleep(0.5)


async def count_rows(database_url: str, sql: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(sql))
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


def stack_config(
    kafka: KafkaSettings, database_url: str, sim_http: str, log_dir: Path, **kw: object
) -> StackConfig:
    return StackConfig(
        bootstrap=kafka.bootstrap_servers,
        database_url=database_url,
        sim_http=sim_http,
        topic_prefix=kafka.topic_prefix,
        local_broker=not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        log_dir=log_dir,
        **kw,  # type: ignore[arg-type]
    )


async def test_trades_reach_postgres_and_threshold_crossing_reaches_slack(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str, tmp_path: Path
) -> None:
    async with SimServer(Market(rate=10, seed=7)) as server:
        cfg = stack_config(
            kafka_settings,
            database_url,
            server.base_url,
            tmp_path,
            ws_venues=("binance",),
            rest_sources=(),
        )
        procs = [
            ServiceProcess(n, cfg) for n in ("ingest-ws", "normalizer", "sink-postgres", "alerts")
        ]
        for p in procs:
            p.start()
        try:
            rows = await eventually(
                lambda: count_rows(
                    database_url, "SELECT count(*) FROM prices WHERE symbol = 'BTC-USDT'"
                ),
                lambda n: n >= 10,
                90,
                "BTC-USDT trades in the prices table",
                procs,
            )
            assert rows >= 10
            server.sim.market.set_price("BTC-USDT", Decimal("69000"))
            slack = await eventually(
                lambda: asyncio.sleep(0, server.sim.recordings.get("slack", [])),
                lambda msgs: any("BTC-USDT" in str(m["body"]) for m in msgs),
                60,
                "a Slack notification about BTC-USDT",
                procs,
            )
            assert any("BTC-USDT" in str(m["body"].get("text", "")) for m in slack)
        finally:
            codes = stop_all(procs)
        assert codes == dict.fromkeys(codes, 0), codes

        # Nothing duplicated: one row per trade id, and the alert's state change is on Kafka.
        dupes = await count_rows(
            database_url,
            "SELECT count(*) - count(DISTINCT event_id) FROM prices",
        )
        assert dupes == 0
        records = await read_topic(kafka_settings, topics.alerts, min_records=1, timeout=10)
        events = [decode_event(r.value) for r in records]
        assert any(isinstance(e, AlertEvent) and e.status == "firing" for e in events)
