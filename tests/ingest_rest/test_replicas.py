"""Several replicas of ingest-rest share the jobs through the work group: each job is polled
by one replica, every job is polled, the replicas together stay within each provider's
budget, and the jobs of a replica that stops move to the one that remains."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from coinstream.ingest_rest import app
from coinstream.ingest_rest.settings import IngestRestSettings, build_settings
from coinstream.marketsim.server import SimServer
from coinstream.runtime import HealthServer, HttpSettings, KafkaSettings

from .helpers import SIM_PATHS

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]

CG_BUDGET = 12  # coingecko calls per window, for both replicas together
WINDOW_S = 2.0
JOBS = {  # path suffix -> job, for the two sources under test
    "coingecko": {
        "/ping": "ping",
        "/simple/price": "simple_price",
        "/coins/markets": "coins_markets",
        "/coins/bitcoin": "coins_id",
        "/exchanges": "exchanges",
        "/global": "global",
    },
    "coinmarketcap": {
        "/v1/cryptocurrency/listings/latest": "listings_latest",
        "/v2/cryptocurrency/quotes/latest": "quotes_latest",
        "/v2/cryptocurrency/info": "info",
        "/v3/fear-and-greed/latest": "fear_and_greed_latest",
    },
}
KEY_HEADER = {"coingecko": "x-cg-demo-api-key", "coinmarketcap": "X-CMC_PRO_API_KEY"}


def replica_settings(
    sim: SimServer, kafka: KafkaSettings, name: str, monkeypatch: pytest.MonkeyPatch
) -> IngestRestSettings:
    """Settings of replica ``name``: its own API keys, so the simulator tells them apart."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "KAFKA_ENABLE_IDEMPOTENCE": str(kafka.enable_idempotence).lower(),
        "KAFKA_SESSION_TIMEOUT_MS": str(kafka.session_timeout_ms),
        "KAFKA_HEARTBEAT_INTERVAL_MS": str(kafka.heartbeat_interval_ms),
        "INGEST_REST_GROUP_ID": f"ingest-rest-{kafka.topic_prefix}",
        "INGEST_REST_HEALTH_INTERVAL_S": "5",
        "INGEST_REST_CMC_DEX__ENABLED": "false",
        "INGEST_REST_FEARGREED__ENABLED": "false",
        "INGEST_REST_COINGECKO__BASE_URL": sim.base_url + SIM_PATHS["coingecko"],
        "INGEST_REST_COINGECKO__API_KEY": f"cg-{name}",
        "INGEST_REST_COINGECKO__IDS": '["bitcoin"]',
        "INGEST_REST_COINGECKO__INTERVAL_S": "0.25",  # demand far above the budget
        "INGEST_REST_COINGECKO__CALLS_PER_MINUTE": str(CG_BUDGET),
        "INGEST_REST_COINGECKO__RATE_WINDOW_S": str(WINDOW_S),
        "INGEST_REST_COINMARKETCAP__BASE_URL": sim.base_url + SIM_PATHS["coinmarketcap"],
        "INGEST_REST_COINMARKETCAP__API_KEY": f"cmc-{name}",
        "INGEST_REST_COINMARKETCAP__INTERVAL_S": "1",
        "INGEST_REST_COINMARKETCAP__CALLS_PER_MINUTE": "1000",
        "INGEST_REST_COINMARKETCAP__RATE_WINDOW_S": str(WINDOW_S),  # a share held one window
        "INGEST_REST_COINMARKETCAP__CREDITS_PER_DAY": "100000",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return build_settings()


def polls(sim: SimServer, source: str, since: float = 0.0) -> list[tuple[float, str, str]]:
    """(arrival, job, replica) of every request to ``source`` since ``since``."""
    found = []
    for r in sim.sim.recordings.get(f"{source}.requests", []):
        if r["at"] < since:
            continue
        job = next((j for p, j in JOBS[source].items() if r["path"].endswith(p)), None)
        key = r["headers"].get(KEY_HEADER[source], "")
        found.append((r["at"], job or r["path"], key.split("-")[-1]))
    return found


def owned_jobs(health: HealthServer) -> int:
    detail = health.readiness()[1].get("work", "")
    match = re.match(r"owns (\d+) of", detail)
    return int(match.group(1)) if match else 0


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(
        (len([t for t in times[i:] if t < s + window]) for i, s in enumerate(times)), default=0
    )


async def test_two_replicas_share_the_jobs_and_the_budget_and_hand_over_on_stop(
    sim: SimServer, kafka_settings: KafkaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    total_jobs = sum(len(jobs) for jobs in JOBS.values())
    stops = {name: asyncio.Event() for name in ("a", "b")}
    healths = {name: HealthServer(HttpSettings(host="127.0.0.1", port=0)) for name in stops}
    tasks: dict[str, asyncio.Task[Any]] = {}
    for name, stop in stops.items():
        settings = replica_settings(sim, kafka_settings, name, monkeypatch)
        tasks[name] = asyncio.create_task(app.main(settings, stop, health=healths[name]))
    try:
        # both replicas hold a share, and the shares cover every job
        assert await until(
            lambda: (
                owned_jobs(healths["a"]) > 0
                and owned_jobs(healths["b"]) > 0
                and owned_jobs(healths["a"]) + owned_jobs(healths["b"]) == total_jobs
            )
        ), {n: h.readiness() for n, h in healths.items()}
        await asyncio.sleep(0.5)  # polls of the first assignment, if any, end
        settled = time.time()
        await asyncio.sleep(4 * WINDOW_S)
        for source, jobs in JOBS.items():
            seen = polls(sim, source, since=settled)
            by_job: dict[str, set[str]] = {}
            for _, job, replica in seen:
                by_job.setdefault(job, set()).add(replica)
            assert set(by_job) == set(jobs.values()), (source, by_job)  # every job polled
            assert all(len(r) == 1 for r in by_job.values()), by_job  # by one replica only
        # the survivor takes over every job of the replica that stops
        before_stop = max(at for at, _, _ in polls(sim, "coinmarketcap"))
        stops["b"].set()
        await asyncio.wait_for(tasks.pop("b"), 20)
        assert await until(lambda: owned_jobs(healths["a"]) == total_jobs)
        for source, jobs in JOBS.items():

            def taken_over(source: str = source, jobs: dict[str, str] = jobs) -> bool:
                seen = polls(sim, source, since=before_stop)
                return {job for _, job, replica in seen if replica == "a"} == set(jobs.values())

            assert await until(taken_over, 20), source
    finally:
        for name, task in tasks.items():
            stops[name].set()
            await asyncio.wait_for(task, 20)
    # the two replicas together never spent more than the coingecko budget in any window
    # (arrival jitter on a loaded machine: 10% slack on the window)
    times = [at for at, _, _ in polls(sim, "coingecko")]
    assert len(times) > CG_BUDGET * 3  # the demand saturated the budget
    assert max_in_window(times, WINDOW_S * 0.9) <= CG_BUDGET
