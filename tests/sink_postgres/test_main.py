"""``python -m coinstream.sink_postgres`` as a real process: SIGKILL, restart, SIGTERM, HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from coinstream.devstack.ports import free_port
from coinstream.devstack.postgres import LocalPostgres
from coinstream.runtime import KafkaSettings
from coinstream.schemas import Topics
from coinstream.sink_postgres.migrations import load_migrations

from .events import trade
from .kit import committed, eventually, fetchval, produce, require_local_postgres

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def _env(kafka: KafkaSettings, database_url: str, port: int, group: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SINK_POSTGRES_", "KAFKA_"))}
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "KAFKA_ENABLE_IDEMPOTENCE": str(kafka.enable_idempotence).lower(),
            "KAFKA_SESSION_TIMEOUT_MS": str(kafka.session_timeout_ms),
            "KAFKA_HEARTBEAT_INTERVAL_MS": str(kafka.heartbeat_interval_ms),
            "SINK_POSTGRES_DATABASE_URL": database_url,
            "SINK_POSTGRES_HTTP__PORT": str(port),
            "SINK_POSTGRES_HTTP__HOST": "127.0.0.1",
            "SINK_POSTGRES_GROUP_ID": group,
            "SINK_POSTGRES_BATCH_MAX_ROWS": "100",
            "SINK_POSTGRES_BATCH_MAX_WAIT_MS": "100",
            "SINK_POSTGRES_LOG_LEVEL": "INFO",
        }
    )
    return env


def _start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "coinstream.sink_postgres", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}{path}") as resp:
            return resp.status, await resp.text()


async def _wait_exit(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    try:
        return await asyncio.to_thread(proc.wait, timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("sink did not stop within the deadline")


async def test_sigkill_mid_stream_then_restart_leaves_exactly_one_row_per_event(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str, tmp_path: Path
) -> None:
    """Killed with SIGKILL while writing, restarted: every event stored once, none lost;
    the second run serves /healthz /readyz /metrics and stops cleanly on SIGTERM."""
    total = 15_000
    symbols = ("BTC-USDT", "ETH-USDT", "PEPE-USDT")
    await produce(
        kafka_settings, topics.prices, [trade(i, symbol=symbols[i % 3]) for i in range(total)]
    )
    port = free_port()
    env = _env(kafka_settings, database_url, port, f"sink-{uuid.uuid4().hex[:8]}")
    log = tmp_path / "sink.log"

    first = _start(env, log)
    try:
        seen = await eventually(
            lambda: fetchval(database_url, "SELECT count(*) FROM prices"),
            lambda n: n > 0,
            timeout=60,
        )
        assert seen, log.read_text()[-3000:]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    at_kill = await fetchval(database_url, "SELECT count(*) FROM prices")
    assert 0 < at_kill < total, "the kill must land mid-stream for this test to mean anything"

    second = _start(env, log)
    try:
        stored = await eventually(
            lambda: fetchval(database_url, "SELECT count(*) FROM prices"),
            lambda n: n >= total,
            timeout=90,
        )
        assert stored == total, log.read_text()[-3000:]
        assert await _get(port, "/healthz") == (200, '{"status": "ok"}')
        status, body = await _get(port, "/readyz")
        assert status == 200, body
        status, metrics = await _get(port, "/metrics")
        assert status == 200
        assert 'sink_postgres_rows_written_total{table="prices"}' in metrics
        assert "sink_postgres_batch_seconds_bucket" in metrics
        offsets = await eventually(
            lambda: committed(kafka_settings, env["SINK_POSTGRES_GROUP_ID"], topics.prices),
            lambda c: sum(c.values()) == total,
        )
        assert sum(offsets.values()) == total
    finally:
        second.send_signal(signal.SIGTERM)
        code = await _wait_exit(second)
    assert code == 0, log.read_text()[-3000:]
    assert await fetchval(database_url, "SELECT count(*) FROM prices") == total
    assert await fetchval(database_url, "SELECT count(DISTINCT event_id) FROM prices") == total


async def test_migrate_command_applies_the_schema_and_exits(
    database_url: str, tmp_path: Path, kafka_settings: KafkaSettings
) -> None:
    """``python -m coinstream.sink_postgres migrate`` creates the tables and views, then exits 0."""
    env = _env(kafka_settings, database_url, 0, "unused")
    proc = _start(env, tmp_path / "migrate.log", "migrate")
    assert await _wait_exit(proc, 60) == 0, (tmp_path / "migrate.log").read_text()
    shipped = len(load_migrations())
    assert await fetchval(database_url, "SELECT count(*) FROM sink_postgres_migrations") == shipped
    assert await fetchval(database_url, "SELECT to_regclass('daily_ohlcv')::text") == "daily_ohlcv"


async def test_sigterm_during_a_database_outage_exits_0_and_loses_nothing(
    kafka_settings: KafkaSettings,
    topics: Topics,
    database_url: str,
    local_postgres: LocalPostgres | None,
    tmp_path: Path,
) -> None:
    """PostgreSQL goes away mid-stream and the sink retries; SIGTERM then stops it with exit
    0, and what it could not write is written after the next start (offsets were held)."""
    pg = require_local_postgres(local_postgres)
    port = free_port()
    env = _env(kafka_settings, database_url, port, f"sink-{uuid.uuid4().hex[:8]}")
    env["SINK_POSTGRES_SHUTDOWN_TIMEOUT_S"] = "10"
    log = tmp_path / "sink.log"
    await produce(kafka_settings, topics.prices, [trade(i) for i in range(100)])
    proc = _start(env, log)
    try:
        await eventually(
            lambda: fetchval(database_url, "SELECT count(*) FROM prices"), lambda n: n == 100
        )
        pg.stop()
        await produce(kafka_settings, topics.prices, [trade(i) for i in range(100, 200)])
        await asyncio.sleep(3)  # the writer is now retrying against a stopped database
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await _wait_exit(proc)
        pg.start()
    assert code == 0, log.read_text()[-3000:]
    assert "database write failed; retrying" in log.read_text()
    again = _start(env, log)
    try:
        stored = await eventually(
            lambda: fetchval(database_url, "SELECT count(*) FROM prices"), lambda n: n == 200
        )
        assert stored == 200
    finally:
        again.send_signal(signal.SIGTERM)
        assert await _wait_exit(again) == 0
