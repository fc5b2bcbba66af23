"""The service as a whole: all four sources polled concurrently from start-up, health endpoints,
health reports, and a graceful stop on SIGTERM of ``python -m coinstream.ingest_rest``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time

import aiohttp
import pytest

from coinstream.devstack.kafkatools import read_topic
from coinstream.devstack.ports import free_port
from coinstream.ingest_rest import app
from coinstream.ingest_rest.settings import build_settings
from coinstream.marketsim.server import SimServer
from coinstream.runtime import HealthServer, HttpSettings, KafkaSettings
from coinstream.schemas import Topics, decode_envelope

from .helpers import SIM_PATHS

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]

ENV_NAMES = {
    "coingecko": "COINGECKO",
    "coinmarketcap": "COINMARKETCAP",
    "cmc-dex": "CMC_DEX",
    "feargreed": "FEARGREED",
}


def service_env(sim: SimServer, kafka: KafkaSettings, port: int) -> dict[str, str]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "KAFKA_ENABLE_IDEMPOTENCE": str(kafka.enable_idempotence).lower(),
        "KAFKA_SESSION_TIMEOUT_MS": str(kafka.session_timeout_ms),
        "KAFKA_HEARTBEAT_INTERVAL_MS": str(kafka.heartbeat_interval_ms),
        "INGEST_REST_GROUP_ID": f"ingest-rest-{kafka.topic_prefix}",
        "INGEST_REST_HTTP__HOST": "127.0.0.1",
        "INGEST_REST_HTTP__PORT": str(port),
        "INGEST_REST_HEALTH_INTERVAL_S": "0.5",
        "INGEST_REST_SHUTDOWN_TIMEOUT_S": "10",
        "INGEST_REST_COINMARKETCAP__API_KEY": "env-cmc-secret",
    }
    for source, name in ENV_NAMES.items():
        env[f"INGEST_REST_{name}__ENABLED"] = "true"
        env[f"INGEST_REST_{name}__BASE_URL"] = sim.base_url + SIM_PATHS[source]
        env[f"INGEST_REST_{name}__INTERVAL_S"] = "30"
    return env


async def test_main_polls_all_sources_at_start_up_and_serves_health(
    sim: SimServer, kafka_settings: KafkaSettings, topics: Topics, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in service_env(sim, kafka_settings, 0).items():
        monkeypatch.setenv(k, v)
    settings = build_settings()
    health = HealthServer(HttpSettings(host="127.0.0.1", port=0))
    stop = asyncio.Event()
    started = time.monotonic()
    task = asyncio.create_task(app.main(settings, stop, health=health))
    try:
        raw = [topics.raw(s) for s in ENV_NAMES]

        def all_sources(recs: list) -> bool:  # type: ignore[type-arg]
            return {decode_envelope(r.value).source for r in recs} == set(ENV_NAMES)

        recs = await read_topic(kafka_settings, raw, until=all_sources, timeout=15)
        assert {decode_envelope(r.value).source for r in recs} == set(ENV_NAMES)
        assert time.monotonic() - started < 15  # first poll at start-up, not after 30 s
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{health.port}"
            for _ in range(100):
                async with http.get(f"{base}/readyz") as r:
                    body = await r.json()
                    if r.status == 200:
                        break
                await asyncio.sleep(0.1)
            assert r.status == 200, body
            assert set(body["checks"]) == {"work"} | {f"source:{s}" for s in ENV_NAMES}
            assert body["checks"]["work"] == "owns 13 of 13 jobs (12 of 12 work partitions)"
            async with http.get(f"{base}/metrics") as r:
                text = await r.text()
            assert "ingest_rest_last_success_timestamp_seconds" in text
            assert 'ingest_rest_budget_remaining{source="coinmarketcap",window="credits"}' in text
            assert 'ingest_rest_owned_jobs{source="coingecko"} 6.0' in text
            assert 'ingest_rest_budget_limit{source="coinmarketcap",window="credits"} 333.0' in text
            assert "env-cmc-secret" not in text
        reports = await read_topic(
            kafka_settings,
            topics.feed_status,
            until=lambda recs: any(
                json.loads(r.value).get("counters", {}).get("published", 0) > 0 for r in recs
            ),
            timeout=10,
        )
        assert any(json.loads(r.value).get("service") == "ingest-rest" for r in reports)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert not any(b"env-cmc-secret" in r.value for r in recs)


async def test_sigterm_stops_the_process_cleanly(
    sim: SimServer, kafka_settings: KafkaSettings, topics: Topics
) -> None:
    port = free_port()
    env = {**os.environ, **service_env(sim, kafka_settings, port), "INGEST_REST_LOG_FORMAT": "json"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "coinstream.ingest_rest", env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        recs = await read_topic(kafka_settings, topics.raw("feargreed"), min_records=1, timeout=20)
        assert recs, "the service published nothing"
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    log = err.decode()
    assert "stopped cleanly" in log
    assert "env-cmc-secret" not in log
