"""Alerts benchmark: throughput against a bare consumer in the same run, and alert latency.

Throughput (``--mode throughput``, the default): N canonical price events are produced to
``prices.v1`` first; then a bare aiokafka consumer reads them all (getmany, nothing else), and
then the alerts service (``coinstream.alerts.app.main``, in this process, with PostgreSQL
state) consumes and evaluates the same N events, once with the demo rules
(``deploy/local/alert-rules.yaml``) and once with 1,000 rules over 500 symbols. Prints for each
events/s (wall clock, from its first to its last event) and µs of CPU per event (this
process's CPU over the same span: the broker and PostgreSQL are other processes).

Latency (``--mode latency``): from a triggering event produced to Kafka to the Slack post
arriving at the simulator, with the service as a separate process (each trigger is a new
symbol, so a new alert of its own group).

    .venv/bin/python bench/alerts_bench.py --events 100000
    .venv/bin/python bench/alerts_bench.py --mode latency --alerts 200

Starts a local broker (Tansu) and PostgreSQL (embedded) unless KAFKA_BOOTSTRAP_SERVERS /
DATABASE_URL point at running servers. It prints figures; it asserts nothing about them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr

from coinstream.alerts import app, metrics
from coinstream.alerts.settings import AlertsSettings
from coinstream.devstack.broker import TansuBroker
from coinstream.devstack.ports import free_port
from coinstream.devstack.postgres import LocalPostgres
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import HttpSettings, KafkaProducer, KafkaSettings, ensure_topics
from coinstream.runtime.kafka import connection_kwargs
from coinstream.schemas import PriceEvent, Topics, deterministic_id

REPO = Path(__file__).resolve().parents[1]
DEMO_RULES = REPO / "deploy" / "local" / "alert-rules.yaml"
DEMO_SYMBOLS = {
    "BTC-USDT": 64000.0,
    "ETH-USDT": 3200.0,
    "SOL-USDT": 150.0,
    "XRP-USDT": 0.6,
    "DOGE-USDT": 0.15,
    "BTC-USD": 64000.0,
    "ETH-BTC": 0.05,
    "ADA-USDT": 0.45,
}
VENUES = ("binance", "coinbase", "kraken")


# ------------------------------------------------------------------------------ events
def make_events(prices: dict[str, float], n: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    """Trades random-walking near their start (0.2% steps, mostly below every threshold),
    round-robin over the symbols and venues, a few ms apart in event time."""
    rng = random.Random(seed)
    level = dict(prices)
    symbols = list(prices)
    start = datetime.now(UTC) - timedelta(seconds=n / 1000)
    out = []
    for i in range(n):
        symbol = symbols[i % len(symbols)]
        level[symbol] *= 1 + rng.uniform(-0.002, 0.002)
        level[symbol] = min(max(level[symbol], prices[symbol] * 0.97), prices[symbol] * 1.03)
        base, quote = symbol.split("-")
        t = start + timedelta(milliseconds=i)
        event = PriceEvent(
            event_id=deterministic_id("bench", i),
            event_time=t,
            received_at=t,
            source=VENUES[i % len(VENUES)],
            kind="trade",
            symbol=symbol,
            base=base,
            quote=quote,
            native_symbol=symbol.replace("-", ""),
            price=Decimal(f"{level[symbol]:.8g}"),
            size=Decimal("0.0125"),
            side="buy" if i % 2 else "sell",
            trade_id=str(i + 1),
        )
        out.append((event.key, event.to_json()))
    return out


def thousand_rules(symbols: list[str]) -> str:
    """1,000 rules over the symbols: two exact-symbol rules each (a cycle of price thresholds
    both ways, percent change, spread and volume spike), plus a few globs."""
    lines = [
        "grouping: {group_by: [alertname], group_wait: 1s, group_interval: 30s, repeat_interval: 1h}",
        "default_receivers: [slack]",
        "receivers:",
        "  slack: {type: slack_webhook, url_env: ALERTS_SLACK_WEBHOOK_URL}",
        "rules:",
    ]
    kinds = [
        "type: price_threshold, direction: above, threshold: {hi}",
        "type: price_threshold, direction: below, threshold: {lo}",
        "type: percent_change, window: 15m, percent: 5",
        "type: spread, percent: 1, max_age: 10s",
        "type: spike, metric: volume, window: 1m, baseline: 30m, factor: 5",
    ]
    n = 0
    for i, symbol in enumerate(symbols):
        for k in range(2):
            kind = kinds[(2 * i + k) % len(kinds)].format(hi=10_000_000, lo=0.00001)
            lines.append(f"  - {{id: r{n}, symbols: [{symbol}], {kind}}}")
            n += 1
    globs = ["S00*-USDT", "S01*-USDT", "S1?0-USDT", "S2[0-4]*-USDT", "*-EUR"]
    while n < 1000:
        glob = globs[n % len(globs)]
        lines.append(
            f"  - {{id: r{n}, symbols: ['{glob}'], type: percent_change, window: 5m, percent: 8}}"
        )
        n += 1
    return "\n".join(lines) + "\n"


async def produce(kafka: KafkaSettings, topic: str, events: list[tuple[bytes, bytes]]) -> None:
    async with KafkaProducer(kafka, linger_ms=20, max_batch_size=512 * 1024) as producer:
        for i in range(0, len(events), 5000):
            futures = [await producer.send(topic, v, key=k) for k, v in events[i : i + 5000]]
            await asyncio.gather(*futures)


# -------------------------------------------------------------------------- throughput
def _report(name: str, n: int, wall: float, cpu: float) -> dict[str, float]:
    rate, per = n / wall, cpu / n * 1e6
    print(f"  {name:<34} {n:>8} events  {rate:>9,.0f} events/s  {per:6.1f} µs CPU/event")
    return {"rate": rate, "cpu_us": per}


async def bare_consumer(kafka: KafkaSettings, topic: str, n: int) -> dict[str, float]:
    """aiokafka getmany until n records: the floor any Python consumer of this topic pays."""
    consumer = AIOKafkaConsumer(
        topic,
        **connection_kwargs(kafka),
        group_id=f"bare-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        seen = first = 0
        start = cpu0 = 0.0
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            got = sum(len(v) for v in batch.values())
            if got and not seen:  # the span starts after the first batch, as for the service
                start, cpu0, first = time.perf_counter(), time.process_time(), got
            seen += got
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
        return _report("bare aiokafka consumer", n - first, wall, cpu)
    finally:
        await consumer.stop()


def _events_counted() -> float:
    return sum(
        s.value for m in metrics.EVENTS.collect() for s in m.samples if s.name.endswith("_total")
    )


async def service_run(
    name: str, kafka: KafkaSettings, rules: Path, dsn: str, hook: str, n: int
) -> dict[str, float]:
    """The alerts service in this process until it evaluated all n events."""
    settings = AlertsSettings(
        rules_file=rules,
        database_url=SecretStr(dsn),
        kafka=kafka,
        http=HttpSettings(host="127.0.0.1", port=free_port()),
        receiver_secrets={"ALERTS_SLACK_WEBHOOK_URL": SecretStr(hook)},
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        log_level="WARNING",
    )
    stop = asyncio.Event()
    before = _events_counted()
    task = asyncio.create_task(app.main(settings, stop))
    try:
        start = cpu0 = None
        count0 = 0.0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = _events_counted() - before
            if start is None and done > 0:
                start, cpu0, count0 = time.perf_counter(), time.process_time(), done
            if done >= n:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        wall, cpu = time.perf_counter() - (start or 0), time.process_time() - (cpu0 or 0)
        return _report(name, int(n - count0), wall, cpu)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def throughput(args: argparse.Namespace, bootstrap: str, dsn: str, workdir: Path) -> None:
    external = bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    logging.basicConfig(level=logging.WARNING)
    async with SimServer(Market(rate=0, seed=1)) as sim:
        hook = f"{sim.base_url}/slack/webhook/T0/B0/bench"
        big = {f"S{i:03d}-USDT": 1.0 + i for i in range(500)}
        cases = [("demo rules", DEMO_RULES, DEMO_SYMBOLS), ("1,000 rules x 500 symbols", None, big)]
        for label, given_rules, symbols in cases:
            prefix = f"bench{uuid.uuid4().hex[:6]}"
            kafka = KafkaSettings(
                bootstrap_servers=bootstrap,
                topic_prefix=prefix,
                enable_idempotence=external,
                session_timeout_ms=6000 if external else 2000,
                heartbeat_interval_ms=500,
            )
            topics = Topics(prefix)
            await ensure_topics(kafka, topics.specs())
            rules_path = given_rules or workdir / "rules-1000.yaml"
            if given_rules is None:
                rules_path.write_text(thousand_rules(list(symbols)))
            events = make_events(symbols, args.events)
            await produce(kafka, topics.prices, events)
            print(f"{label}: {args.events} trades over {len(symbols)} symbols")
            bare = await bare_consumer(kafka, topics.prices, args.events)
            svc = await service_run("alerts service", kafka, rules_path, dsn, hook, args.events)
            print(
                f"  service / bare consumer: {svc['rate'] / bare['rate']:.2f} of the rate, "
                f"{svc['cpu_us'] - bare['cpu_us']:.1f} µs CPU/event more"
            )


# ----------------------------------------------------------------------------- latency
LATENCY_RULES = """
grouping: {group_by: [alertname, symbol], group_wait: 0s, group_interval: 0s,
           repeat_interval: 1h}
receivers:
  slack: {type: slack_webhook, url_env: ALERTS_SLACK_WEBHOOK_URL, min_interval_s: 0}
rules:
  - id: bench-above-100
    type: price_threshold
    symbols: ['*-USDT']
    direction: above
    threshold: 100
    send_resolved: false
    receivers: [slack]
"""


def event(value: str, seq: int) -> PriceEvent:
    """A trade of symbol B<seq>-USDT: every trigger is a new alert of its own group."""
    now = datetime.now(UTC)
    return PriceEvent(
        event_id=deterministic_id("bench", seq),
        event_time=now,
        received_at=now,
        source="bench",
        kind="trade",
        symbol=f"B{seq}-USDT",
        base=f"B{seq}",
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


async def latency(args: argparse.Namespace, bootstrap: str, dsn: str, workdir: Path) -> None:
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
    rules.write_text(LATENCY_RULES)
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
                for i in range(args.warmup + args.alerts):
                    posts = sim.sim.recordings.setdefault("slack", [])
                    before = len(posts)
                    trigger = event("101", i + 1)
                    t0 = time.time()
                    await producer.send_and_wait(topics.prices, trigger.to_json(), key=trigger.key)
                    deadline = time.monotonic() + 10
                    while len(posts) == before and time.monotonic() < deadline:  # noqa: ASYNC110
                        await asyncio.sleep(0.0005)
                    if len(posts) == before:
                        raise TimeoutError(f"alert {i} was not delivered within 10 s")
                    if i >= args.warmup:
                        latencies.append(posts[before]["received_at"] - t0)
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
    parser.add_argument("--mode", choices=["throughput", "latency"], default="throughput")
    parser.add_argument("--events", type=int, default=100_000, help="throughput: price events")
    parser.add_argument("--alerts", type=int, default=200, help="latency: alerts to time")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--gap-ms", type=float, default=20, help="latency: pause between alerts")
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
            run = throughput if args.mode == "throughput" else latency
            asyncio.run(run(args, bootstrap, dsn, workdir))


if __name__ == "__main__":
    main()
