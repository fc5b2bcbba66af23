"""Benchmark: trades from the simulator through the whole local stack into PostgreSQL, at a
steady rate: latency per hop, the highest sustainable rate, CPU and memory per process.

    .venv/bin/python bench/e2e_bench.py                          # 5,000 trades/s for 60 s
    .venv/bin/python bench/e2e_bench.py --rates 2000,5000,10000,15000 --duration 40
    .venv/bin/python bench/e2e_bench.py --soak --rates 10000 --duration 1800 --broker-max-mb 1024

Each rate runs on a fresh stack, started the way ``make demo`` starts it (``tools/devstack``):
a Tansu broker, an embedded PostgreSQL with ``track_commit_timestamp=on``, the market
simulator (``--rate`` set so that the Binance symbols the devstack subscribes make the
requested trades/s; the simulator's other instruments trade too but nobody subscribes them)
and the five services as processes. ingest-ws subscribes Binance trades only (``--channels``).

Per trade (Binance trade id and symbol), five moments:
  exchange   the trade's time (``T``, ms) as the simulator stamped it
  receipt    ``received_at`` of its raw envelope (ingest-ws, µs)
  raw        the raw record's Kafka timestamp (CreateTime: ingest-ws put it into a batch)
  canonical  the price record's Kafka timestamp (the normalizer put it into a batch)
  commit     ``pg_xact_commit_timestamp(xmin)`` of its row in ``prices`` (sink-postgres)
so each hop is one stage's share: receipt->raw is ingest-ws buffering, raw->canonical is the
broker, the normalizer's fetch and its work, canonical->commit the broker, the sink's fetch,
batching and transaction. Percentiles are over the trades of the measurement window, read
after it (the records from the topics, the rows from PostgreSQL), so reading costs the stack
nothing while it is measured.

Sustainable: the pipeline kept up if, in the second half of the window, the freshness lag
(now minus the newest committed trade, sampled every second) stayed under ``--max-lag-s`` and
the rows committed kept pace with the trades the simulator made (>= 95 %). The baseline,
measured in the same run on the same broker and database before the stack starts: one bare
aiokafka hop (producer -> consumer) at the same rate and one bare PostgreSQL transaction; the
floor of the pipeline is two Kafka hops plus one transaction.

``--soak`` prints, every ``--report-every`` seconds, the rate, the latency of the trades
committed in the last seconds, the freshness lag, CPU and memory (RSS) of every process, and
the broker roll-overs (``--broker-max-mb``, see docs/local-broker.md), instead of the per-hop
breakdown (the topics are not kept whole then).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from coinstream.devstack.broker import TansuBroker
from coinstream.devstack.kafkatools import wait_for_partitions
from coinstream.devstack.postgres import LocalPostgres
from coinstream.devstack.stack import (
    DEMO_SYMBOLS,
    LOCAL_FETCH_MAX_WAIT_MS,
    SERVICES,
    ServiceProcess,
    SimulatorProcess,
    StackConfig,
    stop_all,
)
from coinstream.runtime import KafkaProducer, KafkaSettings, ensure_topics
from coinstream.runtime.kafka import connection_kwargs
from coinstream.schemas import Topics

HOPS = ("exchange->receipt", "receipt->raw", "raw->canonical", "canonical->commit")
SYMBOLS = DEMO_SYMBOLS["binance"]


# -- processes: CPU and memory from /proc ---------------------------------------------------


def _cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _children(ppid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == ppid:
                    out.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return out


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, summed over cores."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - fields[3] - fields[4]) / tick, sum(fields) / tick


@dataclass
class Watched:
    """Processes by name; PostgreSQL is the postmaster and all its children summed."""

    pids: dict[str, int] = field(default_factory=dict)
    postmaster: int | None = None

    def sample(self) -> dict[str, tuple[float, float, int]]:
        """name -> (CPU seconds so far, RSS MB now, process id)."""
        out: dict[str, tuple[float, float, int]] = {}
        for name, pid in self.pids.items():
            cpu, rss = _cpu_s(pid), _rss_mb(pid)
            if cpu is not None and rss is not None:
                out[name] = (cpu, rss, pid)
        if self.postmaster is not None:
            cpu_sum = rss_sum = 0.0
            for pid in [self.postmaster, *_children(self.postmaster)]:
                cpu, rss = _cpu_s(pid), _rss_mb(pid)
                cpu_sum += cpu or 0.0
                rss_sum += rss or 0.0
            out["postgresql"] = (cpu_sum, rss_sum, self.postmaster)
        return out


def usage_lines(
    before: dict[str, tuple[float, float, int]],
    after: dict[str, tuple[float, float, int]],
    wall: float,
) -> list[str]:
    lines = []
    for name, (cpu_s, rss, pid) in after.items():
        if name in before:
            # A process replaced meanwhile (the broker after a roll-over): count the new one's
            # CPU only, which leaves out the old one's last seconds.
            cpu = (cpu_s - (before[name][0] if before[name][2] == pid else 0.0)) / wall
            note = "" if before[name][2] == pid else " (new process)"
            lines.append(f"{name:14s} CPU {cpu * 100:5.1f} %   RSS {rss:7.1f} MB{note}")
    return lines


# -- the services' own metrics -----------------------------------------------------------------

STAGE_METRICS = {
    "sink-postgres": (
        "sink_postgres_batch_records",
        "sink_postgres_batch_seconds",
        "sink_postgres_batch_commit_seconds",
    ),
    "normalizer": ("normalizer_batch_seconds", "normalizer_records_total"),
}


async def scrape(procs: Sequence[ServiceProcess]) -> dict[str, float]:
    """Sums and counts of the stages' batch metrics (label sets added up)."""
    out: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=5) as http:
        for p in procs:
            names = STAGE_METRICS.get(p.name)
            if not names:
                continue
            try:
                text = (await http.get(f"{p.health_url}/metrics")).text
            except httpx.HTTPError:
                continue
            for line in text.splitlines():
                if line.startswith("#") or " " not in line:
                    continue
                name, _, value = line.rpartition(" ")
                name = name.split("{", 1)[0]
                if name.startswith(names) and name.endswith(("_sum", "_count", "_total")):
                    out[name] = out.get(name, 0.0) + float(value)
    return out


def stage_lines(before: dict[str, float], after: dict[str, float]) -> list[str]:
    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    lines = []
    batches = delta("sink_postgres_batch_records_count")
    if batches:
        lines.append(
            f"sink-postgres: {batches:.0f} batches, {delta('sink_postgres_batch_records_sum') / batches:.0f}"
            f" records each, {delta('sink_postgres_batch_seconds_sum') / batches * 1000:.1f} ms "
            f"in the database, {delta('sink_postgres_batch_commit_seconds_sum') / batches * 1000:.1f}"
            " ms from first record consumed to offsets committed (means)"
        )
    batches = delta("normalizer_batch_seconds_count")
    if batches:
        lines.append(
            f"normalizer: {batches:.0f} batches, {delta('normalizer_records_total') / batches:.0f} "
            f"records each, {delta('normalizer_batch_seconds_sum') / batches * 1000:.1f} ms from "
            "transform to commit (means)"
        )
    return lines


# -- percentiles ------------------------------------------------------------------------------


def say(text: str) -> None:
    print(text, flush=True)


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def summary(values: Sequence[float]) -> str:
    """p50 / p90 / p99 / max in milliseconds."""
    if not values:
        return "no samples"
    return (
        f"p50 {pct(values, 50):7.1f}  p90 {pct(values, 90):7.1f}  p99 {pct(values, 99):7.1f}  "
        f"max {max(values):7.1f} ms  (n={len(values)})"
    )


# -- baseline -------------------------------------------------------------------------------


async def bare_kafka_hop(bootstrap: str, rate: int, seconds: float) -> list[float]:
    """Milliseconds from ``send`` to ``getmany`` through the broker, at ``rate`` records/s, with
    the services' producer settings (acks=all, linger 5 ms) and a plain consumer."""
    prefix = f"bare{uuid.uuid4().hex[:6]}"
    kafka = KafkaSettings(
        bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        enable_idempotence=False,
        fetch_max_wait_ms=LOCAL_FETCH_MAX_WAIT_MS,
    )
    topic = Topics(prefix).prices
    await ensure_topics(kafka, [s for s in Topics(prefix).specs(sources=()) if s.name == topic])
    parts = await wait_for_partitions(kafka, [topic])
    consumer = AIOKafkaConsumer(
        **connection_kwargs(kafka),
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=kafka.fetch_max_wait_ms,
    )
    await consumer.start()
    consumer.assign(parts)
    await consumer.seek_to_beginning()
    latencies: list[float] = []

    async def consume(until: float) -> None:
        while time.time() < until:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for records in batch.values():
                latencies.extend((now - float(r.value)) * 1000 for r in records)

    end = time.time() + seconds
    reader = asyncio.create_task(consume(end + 1.0))
    async with KafkaProducer(kafka) as producer:
        sent = 0
        start = time.monotonic()
        while time.time() < end:
            due = int((time.monotonic() - start) * rate)
            while sent < due:
                await producer.send(topic, repr(time.time()).encode(), key=str(sent % 8).encode())
                sent += 1
            await asyncio.sleep(0.002)
    await reader
    await consumer.stop()
    return latencies


async def bare_transaction(dsn: str, n: int = 200) -> list[float]:
    """Milliseconds of one small transaction (a 100-row insert into a table, then COMMIT)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TEMP TABLE bare (id bigint, payload text)")
        rows = [(i, "x" * 100) for i in range(100)]
        out = []
        for _ in range(n):
            start = time.perf_counter()
            async with conn.transaction():
                await conn.copy_records_to_table("bare", records=rows)
            out.append((time.perf_counter() - start) * 1000)
        return out
    finally:
        await conn.close()


# -- one step -------------------------------------------------------------------------------


@dataclass
class Step:
    rate: int
    label: str = ""
    sim_rate: float = 0.0
    committed_rate: float = 0.0
    lag_p50: float = float("nan")
    lag_max: float = float("nan")
    e2e: list[float] = field(default_factory=list)
    hops: dict[str, list[float]] = field(default_factory=dict)
    missing: int = 0
    sustained: bool = False
    usage: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    busy: str = ""


async def _query(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def newest_trade(dsn: str) -> float | None:
    """Epoch seconds of the newest committed Binance trade (None before the table exists)."""
    try:
        rows = await _query(
            dsn,
            "SELECT extract(epoch FROM max(event_time))::float8 AS t FROM prices "
            "WHERE source = 'binance' AND kind = 'trade'",
        )
    except asyncpg.UndefinedTableError:
        return None
    value = rows[0]["t"]
    return float(value) if value is not None else None


async def first_trade(dsn: str, timeout: float = 60) -> None:
    """Wait until a Binance trade is committed."""
    deadline = time.monotonic() + timeout
    newest = await newest_trade(dsn)
    while newest is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no trade reached PostgreSQL within {timeout:.0f} s")
        await asyncio.sleep(0.5)
        newest = await newest_trade(dsn)


async def window_rows(dsn: str, t0: float, t1: float) -> list[asyncpg.Record]:
    return await _query(
        dsn,
        "SELECT symbol, trade_id, extract(epoch FROM event_time)::float8 AS exchange, "
        "extract(epoch FROM received_at)::float8 AS receipt, "
        "extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8 AS commit "
        "FROM prices WHERE source = 'binance' AND kind = 'trade' "
        "AND event_time >= to_timestamp($1) AND event_time < to_timestamp($2)",
        t0,
        t1,
    )


def missing_trades(rows: Sequence[asyncpg.Record]) -> tuple[int, int]:
    """(trades the simulator made in the window, how many of them have no row): trade ids
    are contiguous per symbol, so every id between the smallest and largest seen is due."""
    ids: dict[str, set[int]] = {}
    for r in rows:
        ids.setdefault(r["symbol"], set()).add(int(r["trade_id"]))
    made = sum(max(s) - min(s) + 1 for s in ids.values())
    return made, made - sum(len(s) for s in ids.values())


async def topic_times(
    kafka: KafkaSettings, topic: str, raw: bool, t0: float, t1: float
) -> dict[tuple[str, str], float]:
    """(symbol, trade id) -> record timestamp (epoch s) for the Binance trades of a topic."""
    parts = await wait_for_partitions(kafka, [topic])
    consumer = AIOKafkaConsumer(
        **connection_kwargs(kafka), group_id=None, enable_auto_commit=False, max_poll_records=20000
    )
    await consumer.start()
    out: dict[tuple[str, str], float] = {}
    try:
        consumer.assign(parts)
        await consumer.seek_to_beginning()
        idle = 0
        while idle < 4:
            batch = await consumer.getmany(timeout_ms=250, max_records=20000)
            if not batch:
                idle += 1
                continue
            idle = 0
            for records in batch.values():
                for r in records:
                    ts = r.timestamp / 1000
                    if ts < t0 - 5 or ts > t1 + 60 or r.value is None:
                        continue
                    try:
                        doc = orjson.loads(r.value)
                        if raw:
                            data = orjson.loads(doc["payload"])["data"]
                            if data.get("e") != "trade":
                                continue
                            key = (r.key.decode().split(":", 1)[1], str(data["t"]))
                        else:
                            if doc.get("source") != "binance" or doc.get("kind") != "trade":
                                continue
                            key = (doc["symbol"], str(doc["trade_id"]))
                    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
                        continue
                    out.setdefault(key, ts)
    finally:
        await consumer.stop()
    return out


async def wait_ready(procs: Sequence[ServiceProcess], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        for p in procs:
            while True:
                try:
                    if (await http.get(f"{p.health_url}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if not p.running or time.monotonic() > deadline:
                    raise RuntimeError(f"{p.name} not ready:\n{p.log_tail(20)}")
                await asyncio.sleep(0.5)


@dataclass
class Stack:
    broker: TansuBroker
    pg: LocalPostgres
    dsn: str
    kafka: KafkaSettings
    sim: SimulatorProcess
    procs: list[ServiceProcess]
    watched: Watched


BEFORE = {
    "KAFKA_FETCH_MAX_WAIT_MS": "500",
    "SINK_POSTGRES_FLUSH_WHEN_IDLE": "false",
    "SINK_POSTGRES_BATCH_MAX_WAIT_MS": "250",
}
"""``--before``: the settings the local stack had before issue 16 (aiokafka's fetch wait, the
sink's fixed 250 ms batch wait), for a comparison in the same run."""


async def start_stack(
    args: argparse.Namespace, rate: int, work: Path, settings: dict[str, str] | None = None
) -> Stack:
    log_dir = work / f"logs-{rate}-{uuid.uuid4().hex[:4]}"
    log_dir.mkdir(parents=True)
    broker = TansuBroker(log_path=log_dir / "tansu.log")
    broker.start()
    pg = LocalPostgres(work / "pg", settings={"track_commit_timestamp": "on"})
    pg.start()
    name = f"e2e_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(pg.dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    dsn = pg.dsn.rpartition("/")[0] + "/" + name
    prefix = "coinstream"
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap,
        topic_prefix=prefix,
        enable_idempotence=False,
        fetch_max_wait_ms=LOCAL_FETCH_MAX_WAIT_MS,
    )
    await ensure_topics(kafka, Topics(prefix).specs())
    sim = SimulatorProcess(rate=rate / len(SYMBOLS), log_path=log_dir / "market-sim.log")
    sim.start()
    channels = json.dumps(args.channels.split(","))
    cfg = StackConfig(
        bootstrap=broker.bootstrap,
        database_url=dsn,
        sim_http=sim.base_url,
        topic_prefix=prefix,
        local_broker=True,
        log_dir=log_dir,
        ws_venues=("binance",),
        extra_env={
            name: dict(settings or {})
            | ({"INGEST_WS_BINANCE__CHANNELS": channels} if name == "ingest-ws" else {})
            for name in SERVICES
        },
    )
    procs = [ServiceProcess(n, cfg) for n in SERVICES if n in args.services.split(",")]
    for p in procs:
        p.start()
    watched = Watched(
        pids={p.name: p.proc.pid for p in procs if p.proc is not None}, postmaster=pg.pid
    )
    if sim.proc is not None:
        watched.pids["market-sim"] = sim.proc.pid
    if broker.pid is not None:
        watched.pids["tansu"] = broker.pid
    stack = Stack(broker, pg, dsn, kafka, sim, procs, watched)
    await wait_ready(procs)
    return stack


def stop_traffic(stack: Stack) -> None:
    """Stop the simulator and the services (SIGTERM: they drain and commit)."""
    if any(p.proc is not None and p.proc.returncode is None for p in stack.procs):
        codes = stop_all(stack.procs)
        bad = {n: c for n, c in codes.items() if c != 0}
        if bad:
            print(f"  !! exit codes {bad}")
    stack.sim.stop()


async def stop_stack(stack: Stack) -> None:
    stop_traffic(stack)
    stack.broker.stop()
    stack.pg.cleanup()


async def run_step(
    args: argparse.Namespace, rate: int, work: Path, settings: dict[str, str] | None = None
) -> Step:
    step = Step(rate, label=" with the settings before issue 16" if settings else "")
    say(f"[{rate:,}/s{step.label}] starting the stack")
    stack = await start_stack(args, rate, work, settings)
    try:
        await first_trade(stack.dsn)  # warm-up: until trades are committed, then --warmup more
        say(f"[{rate:,}/s] trades arrive; warm-up {args.warmup:.0f} s, then {args.duration:.0f} s")
        await asyncio.sleep(args.warmup)
        t0 = time.time()
        usage0, busy0 = stack.watched.sample(), machine_busy()
        metrics0 = await scrape(stack.procs)
        lags: list[tuple[float, float]] = []
        while time.time() < t0 + args.duration:
            await asyncio.sleep(1.0)
            newest = await newest_trade(stack.dsn)
            now = time.time()
            lags.append((now, now - newest if newest else float("inf")))
        t1 = time.time()
        usage1, busy1 = stack.watched.sample(), machine_busy()
        step.stages = stage_lines(metrics0, await scrape(stack.procs))
        step.usage = usage_lines(usage0, usage1, t1 - t0)
        step.busy = f"{(busy1[0] - busy0[0]) / (t1 - t0):.2f} of {os.cpu_count()} cores busy"
        second_half = [lag for at, lag in lags if at >= t0 + args.duration / 2]
        step.lag_p50, step.lag_max = statistics.median(second_half), max(second_half)
        say(f"[{rate:,}/s] measured; draining and reading")
        # drain: wait (bounded) until trades newer than the window are committed
        drain_until = time.monotonic() + 60
        while time.monotonic() < drain_until:
            newest = await newest_trade(stack.dsn)
            if newest is not None and newest >= t1 + 1:
                break
            await asyncio.sleep(0.5)
        stop_traffic(stack)  # the topics stop growing: they can be read to their end
        rows = await window_rows(stack.dsn, t0, t1)
        made, step.missing = missing_trades(rows)
        step.sim_rate = made / (t1 - t0)
        step.committed_rate = len(rows) / (t1 - t0)
        step.e2e = [(r["commit"] - r["exchange"]) * 1000 for r in rows if r["commit"]]
        # Kept up with what was offered: the simulator must also have made the rate (on a
        # small machine it is the first to run out of CPU) and the stack kept pace with it.
        step.sustained = (
            step.lag_max <= args.max_lag_s
            and len(rows) >= 0.95 * made
            and step.sim_rate >= 0.95 * step.rate
        )
        if not args.no_hops:
            raw = await topic_times(stack.kafka, stack.kafka.topics.raw("binance"), True, t0, t1)
            canon = await topic_times(stack.kafka, stack.kafka.topics.prices, False, t0, t1)
            hops: dict[str, list[float]] = {h: [] for h in HOPS}
            for r in rows:
                key = (r["symbol"], r["trade_id"])
                raw_ts, canon_ts = raw.get(key), canon.get(key)
                if raw_ts is None or canon_ts is None or r["commit"] is None:
                    continue
                hops["exchange->receipt"].append((r["receipt"] - r["exchange"]) * 1000)
                hops["receipt->raw"].append((raw_ts - r["receipt"]) * 1000)
                hops["raw->canonical"].append((canon_ts - raw_ts) * 1000)
                hops["canonical->commit"].append((r["commit"] - canon_ts) * 1000)
            step.hops = hops
    finally:
        await stop_stack(stack)
    return step


def print_step(step: Step, bare_hop: list[float], bare_tx: list[float]) -> None:
    print(f"\n== {step.rate:,} Binance trades/s offered{step.label}")
    print(
        f"  simulator made {step.sim_rate:,.0f}/s, rows committed {step.committed_rate:,.0f}/s, "
        f"missing {step.missing}; freshness lag (2nd half) median {step.lag_p50:.2f} s, "
        f"max {step.lag_max:.2f} s -> {'SUSTAINED' if step.sustained else 'NOT sustained'}"
    )
    if step.sim_rate < 0.95 * step.rate:
        print(
            f"  the simulator made only {step.sim_rate / step.rate:.0%} of the offered rate: "
            "this machine cannot generate it next to the stack (see the CPU figures)"
        )
    print(f"  trade -> PostgreSQL commit: {summary(step.e2e)}")
    for hop, values in step.hops.items():
        print(f"    {hop:18s} {summary(values)}")
    if bare_hop and bare_tx and step.e2e:
        floor = 2 * pct(bare_hop, 50) + pct(bare_tx, 50)
        print(
            f"  floor (2 bare Kafka hops + 1 bare transaction, p50) {floor:.1f} ms; "
            f"pipeline p50 / floor = {pct(step.e2e, 50) / floor:.1f}"
        )
    for line in step.stages:
        print(f"  {line}")
    print(f"  machine: {step.busy}")
    for line in step.usage:
        print(f"    {line}")


# -- soak -------------------------------------------------------------------------------------


async def soak(args: argparse.Namespace, rate: int, work: Path) -> None:
    from coinstream.devstack.rollover import BrokerRoller

    stack = await start_stack(args, rate, work)
    roller = None
    if args.broker_max_mb:
        roller = BrokerRoller(
            stack.broker,
            stack.kafka,
            [p.proc.pid for p in stack.procs if p.proc is not None],
            max_rss_mb=args.broker_max_mb,
            trim_unconsumed={stack.kafka.topics.dlq},
        )
    try:
        await first_trade(stack.dsn)
        started = time.time()
        print(f"soak at {rate:,} trades/s for {args.duration:.0f} s; uptime: {os.getloadavg()}")
        last_usage, last_at, last_busy = stack.watched.sample(), started, machine_busy()
        lags: list[float] = []
        while time.time() < started + args.duration:
            await asyncio.sleep(1.0)
            if roller is not None:
                await roller.check()
                if roller.pid is not None:
                    stack.watched.pids["tansu"] = roller.pid
            newest = await newest_trade(stack.dsn)
            now = time.time()
            lags.append(now - newest if newest else float("inf"))
            if now - last_at >= args.report_every:
                rows = await window_rows(stack.dsn, now - 12, now - 2)
                made, missing = missing_trades(rows)
                e2e = [(r["commit"] - r["exchange"]) * 1000 for r in rows if r["commit"]]
                usage, busy = stack.watched.sample(), machine_busy()
                print(
                    f"[{now - started:6.0f} s] made {made / 10:,.0f}/s committed "
                    f"{len(rows) / 10:,.0f}/s missing {missing}; e2e p50 {pct(e2e, 50):.0f} "
                    f"p99 {pct(e2e, 99):.0f} ms; lag median {statistics.median(lags):.2f} max "
                    f"{max(lags):.2f} s; {(busy[0] - last_busy[0]) / (now - last_at):.2f} cores "
                    f"busy; rolls {roller.rolls if roller else 0}; uptime {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                for line in usage_lines(last_usage, usage, now - last_at):
                    print(f"    {line}", flush=True)
                last_usage, last_at, last_busy, lags = usage, now, busy, []
        await asyncio.sleep(5)  # let the last trades arrive, then check the whole run
        rows = await _query(
            stack.dsn,
            "SELECT symbol, count(*) AS n, count(DISTINCT trade_id) AS d, "
            "min(trade_id::bigint) AS lo, max(trade_id::bigint) AS hi FROM prices "
            "WHERE source = 'binance' AND kind = 'trade' GROUP BY symbol",
        )
        made = sum(r["hi"] - r["lo"] + 1 for r in rows)
        stored = sum(r["d"] for r in rows)
        print(
            f"whole run: {made:,} trades made (contiguous ids), {stored:,} stored, "
            f"{made - stored:,} missing, {sum(r['n'] - r['d'] for r in rows):,} duplicated rows"
        )
    finally:
        await stop_stack(stack)
        if roller is not None:
            print(f"broker roll-overs: {roller.rolls}; {roller.summary()}")


# -- main -------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="e2ebench-"))
    rates = [int(r) for r in args.rates.split(",")]
    print(f"machine load (uptime): {os.getloadavg()}; {os.cpu_count()} cores")
    try:
        if args.soak:
            await soak(args, rates[0], work)
            return
        bare_hop: list[float] = []
        bare_tx: list[float] = []
        if not args.no_baseline:
            with TansuBroker() as broker:
                bare_hop = await bare_kafka_hop(broker.bootstrap, rates[0], 8.0)
            with LocalPostgres(work / "pg-bare") as pg:
                bare_tx = await bare_transaction(pg.dsn)
            print(f"bare aiokafka hop at {rates[0]:,}/s: {summary(bare_hop)}")
            print(f"bare PostgreSQL transaction (100 rows): {summary(bare_tx)}")
        steps = []
        for rate in rates:
            before = None
            if args.before:
                before = await run_step(args, rate, work, BEFORE)
                print_step(before, bare_hop, bare_tx)
            step = await run_step(args, rate, work)
            print_step(step, bare_hop, bare_tx)
            if before is not None and before.e2e and step.e2e:
                print(
                    f"  now / before, trade -> commit: p50 {pct(step.e2e, 50) / pct(before.e2e, 50):.2f}"
                    f", p99 {pct(step.e2e, 99) / pct(before.e2e, 99):.2f}"
                )
            steps.append(step)
        ok = [s.rate for s in steps if s.sustained]
        print(
            f"\nhighest sustained rate among {rates}: {max(ok):,} trades/s"
            if ok
            else f"\nno rate among {rates} was sustained"
        )
        made = max((s.committed_rate for s in steps if s.lag_max <= args.max_lag_s), default=0)
        print(f"highest rate committed with the lag bounded: {made:,.0f} trades/s")
        print(f"machine load (uptime) at the end: {os.getloadavg()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM/SIGHUP end the run like Ctrl-C: the stack's processes are stopped on the way out
    (they run in their own sessions and would outlive this script otherwise)."""
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # soak lines as they come
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rates", default="5000", help="Binance trades/s, comma-separated")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per rate")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--channels", default="trade", help="Binance channels ingest-ws takes")
    parser.add_argument("--services", default=",".join(SERVICES))
    parser.add_argument("--max-lag-s", type=float, default=2.0)
    parser.add_argument("--no-hops", action="store_true", help="skip the per-hop breakdown")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--soak", action="store_true")
    parser.add_argument(
        "--before", action="store_true", help="also run each rate with the settings before #16"
    )
    parser.add_argument("--report-every", type=float, default=60.0)
    parser.add_argument(
        "--broker-max-mb", type=float, default=0, help="soak: roll the broker over above this RSS"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
