"""Two ingest-ws replicas against the simulator share the streams: each configured stream is
published by exactly one of them, and when one stops the other takes its streams over, with
every trade the venues sent on the raw topic (live or backfilled) or in a reported
unrecoverable gap."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from coinstream.devstack.kafkatools import read_topic
from coinstream.devstack.stack import DEMO_SYMBOLS, ServiceProcess, StackConfig
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaSettings
from coinstream.schemas import FeedStatusEvent, Topics
from support.completeness import VENUES, raw_ids, statuses, truth, unrecoverable

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

JOBS = {f"{venue}/{symbol}" for venue in VENUES for symbol in DEMO_SYMBOLS[venue]}


def replica(kafka: KafkaSettings, sim: SimServer, log_dir: Path, name: str) -> ServiceProcess:
    (log_dir / name).mkdir(parents=True, exist_ok=True)
    cfg = StackConfig(
        bootstrap=kafka.bootstrap_servers,
        database_url="postgresql://unused",
        sim_http=sim.base_url,
        topic_prefix=kafka.topic_prefix,
        local_broker=not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        log_dir=log_dir / name,
        rest_sources=(),
        ws_venues=VENUES,  # the exchanges: one job per symbol
        extra_env={
            "ingest-ws": {
                "INGEST_WS_CHECKPOINT_INTERVAL_S": "0.5",
                "INGEST_WS_GROUP_ID": f"ingest-ws-{kafka.topic_prefix}",
                "INGEST_WS_INSTANCE_ID": name,
            }
        },
    )
    return ServiceProcess("ingest-ws", cfg)


async def readiness(proc: ServiceProcess) -> dict[str, Any]:
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{proc.health_url}/readyz", timeout=aiohttp.ClientTimeout(total=3)) as r,
        ):
            body: dict[str, Any] = await r.json()
            return body
    except (aiohttp.ClientError, TimeoutError):
        return {}


def owned(body: dict[str, Any]) -> int | None:
    """N of the ``work`` check's "owns N of M streams", once the replica is ready."""
    work = body.get("checks", {}).get("work", "")
    if body.get("status") != "ready" or not work.startswith("owns "):
        return None
    return int(work.split()[1])


def connections(proc: ServiceProcess) -> set[str]:
    """The WebSocket connections this process opened (its "connected" log lines)."""
    assert proc.log_path is not None
    out = set()
    for line in proc.log_path.read_text(errors="replace").splitlines():
        if '"connected"' in line:
            entry = json.loads(line)
            if entry.get("msg") == "connected":
                out.add(entry["connection_id"])
    return out


async def wait_for(probe: Any, what: str, procs: list[ServiceProcess], timeout: float = 50) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.log_path}\n{p.log_tail(30)}" for p in procs)
            pytest.fail(f"timed out waiting for {what}\n{tails}")
        await asyncio.sleep(0.5)


async def test_two_replicas_split_the_streams_and_one_takes_over_when_the_other_stops(
    kafka_settings: KafkaSettings, topics: Topics, tmp_path: Path
) -> None:
    """Split: every stream live from exactly one replica. SIGTERM one: the other owns every
    stream, reports the handover gap of the moved ones and backfills it; nothing is lost
    silently."""
    market = Market(rate=15, seed=44)
    async with SimServer(market) as sim:
        a = replica(kafka_settings, sim, tmp_path, "a")
        b = replica(kafka_settings, sim, tmp_path, "b")
        procs = [a, b]
        try:
            a.start()

            async def alone() -> bool:
                return owned(await readiness(a)) == len(JOBS)

            await wait_for(alone, "replica a to own every stream", procs)
            b.start()

            async def split() -> tuple[int, int] | None:
                n = (owned(await readiness(a)), owned(await readiness(b)))
                ok = n[0] and n[1] and n[0] + n[1] == len(JOBS)
                return n if ok else None  # type: ignore[return-value]

            shares = await wait_for(split, "the streams split between a and b", procs)
            since_ms = int(time.time() * 1000) + 500
            end_ms = since_ms + 3000

            def window_read(records: list[Any]) -> bool:
                """Every job has a record after the window (a key's records are in order)."""
                late = {
                    (r.key or b"").decode().replace(":", "/", 1)
                    for r in records
                    if r.timestamp > end_ms
                }
                return late >= JOBS

            records = await read_topic(
                kafka_settings, [topics.raw(v) for v in VENUES], timeout=30, until=window_read
            )
            assert await split() == shares, "the split moved while it was measured"
            owner = {c: "a" for c in connections(a)} | {c: "b" for c in connections(b)}
            publishers: dict[str, set[str]] = defaultdict(set)
            for r in records:
                env = json.loads(r.value)
                venue, _, symbol = (r.key or b"").decode().partition(":")
                job = f"{venue}/{symbol}"
                if since_ms <= r.timestamp <= end_ms and job in JOBS and env.get("connection_id"):
                    publishers[job].add(owner.get(env["connection_id"], "?"))
            assert set(publishers) == JOBS, sorted(JOBS - set(publishers))
            assert all(len(p) == 1 and p != {"?"} for p in publishers.values()), publishers
            moved = {job for job, p in publishers.items() if p == {"b"}}
            assert len(moved) == shares[1]

            b.signal(signal.SIGTERM)
            assert b.stop(timeout=30) == 0, b.log_tail(40)

            async def took_over() -> list[FeedStatusEvent]:
                if owned(await readiness(a)) != len(JOBS):
                    return []
                events = await statuses(kafka_settings, topics)
                done = {
                    f"{e.source}/{e.symbol}"
                    for e in events
                    if e.status in ("gap_filled", "gap_unrecoverable")
                }
                gapped = {
                    f"{e.source}/{e.symbol}"
                    for e in events
                    if e.status == "gap" and e.details.get("backfill") == "queued"
                }
                return events if gapped and gapped <= done else []

            await wait_for(took_over, "replica a to own every stream and fill the gaps", procs)
            market.pause()
            await asyncio.sleep(2.5)  # the last frames, a last gap check, a last backfill
            a.signal(signal.SIGTERM)
            assert a.stop(timeout=30) == 0, a.log_tail(40)
        finally:
            for p in procs:
                p.stop(timeout=20)
        seen = await raw_ids(kafka_settings, topics)
        events = await statuses(kafka_settings, topics)
    lost = unrecoverable(events)
    missing = {
        k: sorted(ids - seen.get(k, set()) - lost.get(k, set()))[:10]
        for k, ids in truth(market, seen).items()
    }
    assert missing == {k: [] for k in missing}, missing
    handover = {
        f"{e.source}/{e.symbol}" for e in events if e.status == "gap" and e.symbol is not None
    }
    assert handover & moved, "the moved streams reported no handover gap"
