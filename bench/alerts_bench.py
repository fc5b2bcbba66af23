"""Alert latency: from a triggering price event produced to Kafka to the Slack post arriving.

Starts a local broker (Tansu), PostgreSQL (embedded), the market simulator's Slack receiver
and ``python -m coinstream.alerts`` as a separate process, then repeatedly pushes BENCH-USDT
above the threshold (the trigger) and back below (re-arm; no resolved notice), waiting for each
Slack post. Prints median, p90, p99 and max over all alerts.

    .venv/bin/python bench/alerts_bench.py --alerts 200

Set KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL to use servers that are already running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aiohttp

from coinstream.devstack.broker import TansuBroker
from coinstream.devstack.ports import free_port
from coinstream.devstack.postgres import LocalPostgres
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaProducer, KafkaSettings, ensure_topics
from coinstream.schemas import PriceEvent, Topics, deterministic_id

RULES = """
grouping: {group_by: [alertname], group_wait: 0s, group_interval: 0s, repeat_interval: 1h}
receivers:
  slack: {type: slack_webhook, url_env: ALERTS_SLACK_WEBHOOK_URL, min_interval_s: 0}
rules:
  - id: bench-above-100
    type: price_threshold
    symbols: [BENCH-USDT]
    direction: above
    threshold: 100
    send_resolved: false
    receivers: [slack]
"""


def event(value: str, seq: int) -> PriceEvent:
    now = datetime.now(UTC)
    return PriceEvent(
        event_id=deterministic_id("bench", seq),
        event_time=now,
        received_at=now,
        source="bench",
        kind="trade",
        symbol="BENCH-USDT",
        base="BENCH",
        quote="USDT",
        price=Decimal(value),
        size=Decimal(1),
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "coinstream.alerts"], env=env, stdout=out, stderr=out
        )


async def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("alerts service exited during start-up")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise TimeoutError("alerts service not ready")


async def run(args: argparse.Namespace, bootstrap: str, dsn: str, workdir: Path) -> None:
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    external = bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    kafka = KafkaSettings(
        bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        enable_idempotence=external,
        linger_ms=0,
    )
    topics = Topics(prefix)
    await ensure_topics(kafka, topics.specs())
    rules = workdir / "rules.yaml"
    rules.write_text(RULES)
    port = free_port()
    async with SimServer(Market(rate=0, seed=1)) as sim:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERTS_", "KAFKA_"))}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            KAFKA_TOPIC_PREFIX=prefix,
            KAFKA_ENABLE_IDEMPOTENCE=str(external).lower(),
            KAFKA_SESSION_TIMEOUT_MS="6000" if external else "2000",
            KAFKA_HEARTBEAT_INTERVAL_MS="500",
            KAFKA_LINGER_MS="0",
            ALERTS_HTTP__PORT=str(port),
            ALERTS_RULES_FILE=str(rules),
            ALERTS_DATABASE_URL=dsn,
            ALERTS_SLACK_WEBHOOK_URL=f"{sim.base_url}/slack/webhook/T0/B0/bench",
            ALERTS_LOG_LEVEL="WARNING",
        )
        proc = spawn(env, workdir / "alerts.log")
        try:
            await wait_ready(port, proc)
            latencies: list[float] = []
            async with KafkaProducer(kafka, linger_ms=0) as producer:
                seq = 0
                for i in range(args.warmup + args.alerts):
                    posts = sim.sim.recordings.setdefault("slack", [])
                    before = len(posts)
                    seq += 1
                    trigger = event("101", seq)
                    t0 = time.time()
                    await producer.send_and_wait(topics.prices, trigger.to_json(), key=trigger.key)
                    deadline = time.monotonic() + 10
                    while len(posts) == before and time.monotonic() < deadline:  # noqa: ASYNC110
                        await asyncio.sleep(0.0005)
                    if len(posts) == before:
                        raise TimeoutError(f"alert {i} was not delivered within 10 s")
                    if i >= args.warmup:
                        latencies.append(posts[before]["received_at"] - t0)
                    seq += 1
                    rearm = event("99", seq)
                    await producer.send_and_wait(topics.prices, rearm.to_json(), key=rearm.key)
                    await asyncio.sleep(args.gap_ms / 1000)
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 20)
    ms = [x * 1000 for x in latencies]
    print(f"alerts delivered: {len(ms)} (after {args.warmup} warm-up)")
    print(
        "price event on Kafka -> Slack post received, ms: "
        f"median {statistics.median(ms):.1f}  p90 {pct(ms, 0.90):.1f}  "
        f"p99 {pct(ms, 0.99):.1f}  max {max(ms):.1f}  min {min(ms):.1f}"
    )
    print(f"service exit code: {proc.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--gap-ms", type=float, default=20, help="pause after each re-arm")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alerts-bench-") as tmp:
        workdir = Path(tmp)
        with contextlib.ExitStack() as stack:
            bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
            if not bootstrap:
                bootstrap = stack.enter_context(
                    TansuBroker(log_path=workdir / "tansu.log")
                ).bootstrap
            dsn = os.environ.get("DATABASE_URL")
            if not dsn:
                pg = LocalPostgres(workdir / "pg")
                pg.start()
                stack.callback(pg.cleanup)
                dsn = pg.dsn
            asyncio.run(run(args, bootstrap, dsn, workdir))


if __name__ == "__main__":
    main()
