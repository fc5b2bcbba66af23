"""Benchmark: canonical price events from Kafka through sink-postgres into PostgreSQL, against
the bare database path (COPY into a staging table + INSERT ... ON CONFLICT) with the same rows
and the same batch size, in the same run.

    .venv/bin/python bench/sink_postgres_bench.py [--events 200000] [--batch 5000] [--repeat 1]

Starts a local Tansu broker and an embedded PostgreSQL unless KAFKA_BOOTSTRAP_SERVERS /
DATABASE_URL point at running servers. Prints rows/s of both paths and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from coinstream.devstack.broker import TansuBroker
from coinstream.devstack.postgres import LocalPostgres
from coinstream.runtime import HttpSettings, KafkaProducer, KafkaSettings, ensure_topics
from coinstream.schemas import PriceEvent, Topics
from coinstream.sink_postgres import app
from coinstream.sink_postgres import metrics as m
from coinstream.sink_postgres.copytext import copy_line
from coinstream.sink_postgres.migrations import migrate
from coinstream.sink_postgres.rows import price_rows
from coinstream.sink_postgres.settings import SinkPostgresSettings
from coinstream.sink_postgres.tables import PRICES

SYMBOLS = [f"{b}-USDT" for b in ("BTC", "ETH", "SOL", "XRP", "DOGE", "PEPE", "ADA", "AVAX")]


def make_events(n: int) -> list[PriceEvent]:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        sym = SYMBOLS[i % len(SYMBOLS)]
        t = t0 + timedelta(microseconds=i * 250)
        out.append(
            PriceEvent(
                event_id=str(uuid.UUID(int=i + 1)),
                event_time=t,
                received_at=t + timedelta(milliseconds=3),
                source="binance",
                kind="trade",
                symbol=sym,
                base=sym.split("-")[0],
                quote="USDT",
                native_symbol=sym.replace("-", ""),
                price=Decimal("64000.12") + Decimal(i % 1000) / 100,
                size=Decimal("0.00123"),
                side="buy" if i % 2 else "sell",
                trade_id=str(i),
            )
        )
    return out


async def fresh_db(admin_dsn: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = admin_dsn.rpartition("/")[0] + "/" + name
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return url


async def drop_db(admin_dsn: str, url: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)')
    finally:
        await conn.close()


def backend_cpu_s(pid: int | None) -> float | None:
    """CPU seconds used so far by a PostgreSQL backend process (local server only)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, summed over cores."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


def busy_cores(before: tuple[float, float], wall: float) -> str:
    """Average number of busy cores (all processes) since ``before``."""
    busy = machine_cpu()[0] - before[0]
    return f"{busy / wall:.2f} of {os.cpu_count()} cores busy"


BROKER_PID: int | None = None
"""The local broker's process id when this script started it (its CPU is reported)."""


def _per_row(cpu: float | None, n: int) -> str:
    return "n/a" if cpu is None else f"{cpu / n * 1e6:.1f} us/row"


async def bare_path(url: str, events: list[PriceEvent], batch: int, fmt: str) -> float:
    """Rows/s of COPY into staging + INSERT ... ON CONFLICT, one transaction per batch, rows
    built in memory beforehand. ``fmt`` ``binary``: asyncpg ``copy_records_to_table`` of the
    row tuples; ``text``: text COPY of the rows' pre-encoded lines (the bytes the sink sends)."""
    rows = [price_rows(e)[0][1] for e in events]
    lines = [copy_line(r) for r in rows]
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(PRICES.create_staging_sql())
        sql = PRICES.upsert_sql()
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        server0 = backend_cpu_s(pid)
        machine0 = machine_cpu()
        start, cpu0 = time.perf_counter(), time.process_time()
        for i in range(0, len(rows), batch):
            async with conn.transaction():
                if fmt == "binary":
                    await conn.copy_records_to_table(
                        PRICES.staging, records=rows[i : i + batch], columns=PRICES.columns
                    )
                else:
                    data = "".join(lines[i : i + batch]).encode()
                    await conn.copy_to_table(
                        PRICES.staging,
                        source=memoryview(data),
                        columns=PRICES.columns,
                        format="text",
                    )
                await conn.execute(sql)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        server1 = backend_cpu_s(pid)
        server = None if server0 is None or server1 is None else server1 - server0
        print(
            f"    bare {fmt:6s}: {elapsed:.2f} s wall, {len(rows) / elapsed:,.0f} rows/s; "
            f"client CPU {_per_row(cpu, len(rows))}, server backend CPU {_per_row(server, len(rows))}"
            f"; machine: {busy_cores(machine0, elapsed)}"
        )
        assert await conn.fetchval("SELECT count(*) FROM prices") == len(rows)
    finally:
        await conn.close()
    return len(rows) / elapsed


async def produce(kafka: KafkaSettings, topic: str, events: list[PriceEvent]) -> float:
    start = time.perf_counter()
    async with KafkaProducer(kafka, linger_ms=20) as producer:
        futures = [await producer.send(topic, e.to_json(), key=e.key) for e in events]
        await asyncio.gather(*futures)
    return len(events) / (time.perf_counter() - start)


def metric(counter: Any, **labels: str) -> float:
    """A sample of one metric (cheap: collects only that metric, not the whole registry)."""
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith(("_total", "_sum")) and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def sink_backend_pid(url: str) -> int | None:
    conn = await asyncpg.connect(url)
    try:
        pid = await conn.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'coinstream-sink-postgres' LIMIT 1"
        )
        return int(pid) if pid is not None else None
    finally:
        await conn.close()


async def sink_path(
    kafka: KafkaSettings, url: str, n: int, batch: int, pending: int = 2
) -> tuple[float, float]:
    """Rows/s through the sink: first record consumed -> last row committed to PostgreSQL."""
    settings = SinkPostgresSettings(
        database_url=url,
        kafka=kafka,
        http=HttpSettings(host="127.0.0.1", port=0),
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        batch_max_rows=batch,
        poll_max_records=batch,
        batch_max_wait_ms=500,
        max_pending_batches=pending,
        health_interval_s=3600,
    )
    consumed0 = metric(m.RECORDS_CONSUMED, topic=kafka.topics.prices)
    written0 = metric(m.ROWS_WRITTEN, table="prices")
    db0 = metric(m.BATCH_SECONDS)
    stop = asyncio.Event()
    task = asyncio.create_task(app.main(settings, stop))
    try:
        while True:  # the clock starts with the first record consumed
            if metric(m.RECORDS_CONSUMED, topic=kafka.topics.prices) > consumed0:
                break
            await asyncio.sleep(0.002)
        start, cpu0 = time.perf_counter(), time.process_time()
        machine0, broker0 = machine_cpu(), backend_cpu_s(BROKER_PID)
        while True:  # ... and stops when the last row is committed
            if metric(m.ROWS_WRITTEN, table="prices") - written0 >= n:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        db = metric(m.BATCH_SECONDS) - db0
        broker1 = backend_cpu_s(BROKER_PID)
        broker = None if broker0 is None or broker1 is None else broker1 - broker0
        server = backend_cpu_s(await sink_backend_pid(url))
        print(
            f"    sink: {elapsed:.2f} s wall, of it {db:.2f} s in database transactions; "
            f"sink process CPU {_per_row(cpu, n)}, server backend CPU {_per_row(server, n)}, "
            f"broker CPU {_per_row(broker, n)}; machine: {busy_cores(machine0, elapsed)}"
        )
    finally:
        stop.set()
        await task
    conn = await asyncpg.connect(url)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM prices")
    finally:
        await conn.close()
    assert stored == n, f"stored {stored} of {n}"
    return n / elapsed, elapsed


async def run(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="sinkbench-"))
    broker = pg = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    admin_dsn = os.environ.get("DATABASE_URL")
    if not bootstrap:
        broker = TansuBroker(log_path=tmp / "tansu.log")
        broker.start()
        bootstrap = broker.bootstrap
        global BROKER_PID
        proc = getattr(broker, "_proc", None)
        BROKER_PID = proc.pid if proc is not None else None
    if not admin_dsn:
        pg = LocalPostgres(tmp / "pg")
        pg.start()
        admin_dsn = pg.dsn
    try:
        print(f"generating {args.events} canonical trade events ...")
        events = make_events(args.events)
        for r in range(args.repeat):
            prefix = f"bench{uuid.uuid4().hex[:6]}"
            kafka = KafkaSettings(
                bootstrap_servers=bootstrap,
                topic_prefix=prefix,
                enable_idempotence=broker is None,
                session_timeout_ms=2000 if broker else 6000,
                heartbeat_interval_ms=500 if broker else 2000,
            )
            topics = Topics(prefix)
            await ensure_topics(kafka, topics.specs(sources=()))
            rate = await produce(kafka, topics.prices, events)
            print(f"[run {r + 1}] produced {len(events)} events to Kafka at {rate:,.0f}/s")
            # bare, sink, bare: the shared machine's load drifts, so the sink is compared with
            # the mean of the bare runs around it, for both COPY formats (binary: asyncpg's
            # copy_records_to_table; text: pre-encoded lines, the format the sink uses).
            urls = [await fresh_db(admin_dsn) for _ in range(5)]
            try:
                bin1 = await bare_path(urls[0], events, args.batch, "binary")
                txt1 = await bare_path(urls[1], events, args.batch, "text")
                sink, elapsed = await sink_path(
                    kafka, urls[2], len(events), args.batch, args.pending
                )
                txt2 = await bare_path(urls[3], events, args.batch, "text")
                bin2 = await bare_path(urls[4], events, args.batch, "binary")
            finally:
                for url in urls:
                    await drop_db(admin_dsn, url)
            binary, text = (bin1 + bin2) / 2, (txt1 + txt2) / 2
            print(f"[run {r + 1}] batch size {args.batch}, {len(events)} rows")
            print(
                f"[run {r + 1}] bare DB path, binary COPY staging + ON CONFLICT: {binary:,.0f} rows/s"
                f" (before {bin1:,.0f}, after {bin2:,.0f})"
            )
            print(
                f"[run {r + 1}] bare DB path, text COPY staging + ON CONFLICT:   {text:,.0f} rows/s"
                f" (before {txt1:,.0f}, after {txt2:,.0f})"
            )
            print(
                f"[run {r + 1}] sink path (Kafka -> decode -> PostgreSQL):        {sink:,.0f} rows/s"
                f" ({elapsed:.2f} s)"
            )
            print(
                f"[run {r + 1}] ratio sink/bare: {sink / max(binary, text):.2f} against the faster"
                f" bare path, {sink / binary:.2f} against binary, {sink / text:.2f} against text"
                " (target >= 0.70)"
            )
    finally:
        if pg is not None:
            pg.cleanup()
        if broker is not None:
            broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--pending", type=int, default=2, help="sink max_pending_batches")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
