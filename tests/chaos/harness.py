"""A running stack to break: the simulator in this process (with its own record of every trade
it made), the five services as processes, and probes that read Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka.errors import MessageSizeTooLargeError

from coinstream.devstack.kafkatools import read_topic
from coinstream.devstack.stack import SERVICES, ServiceProcess, StackConfig, stop_all
from coinstream.marketsim.market import Market, Trade
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaProducer, KafkaSettings
from coinstream.schemas import DeadLetter, Topics
from support.rawtrades import trades_in

from .corpus import Poison

TRADE_VENUES = {
    "binance": ("BTC-USDT", "ETH-USDT", "SOL-USDT", "PEPE-USDT"),
    "coinbase": ("BTC-USD", "ETH-USD"),
    "kraken": ("BTC-USD", "ETH-USD"),
}
Trade_ = tuple[str, int]
"""(canonical symbol, trade id)."""


@dataclass
class Injected:
    poison: Poison
    topic: str
    partition: int
    offset: int


@dataclass
class Fault:
    """What one fault did: figures for the report."""

    name: str
    started: float
    recovered_s: float | None = None
    ended: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)


class ChaosStack:
    """``async with ChaosStack(...) as stack``: simulator and services up and flowing."""

    def __init__(
        self,
        kafka: KafkaSettings,
        database_url: str,
        log_dir: Path,
        rate: float = 8.0,
        normalizer_max_record_bytes: int = 300_000,
    ) -> None:
        self.kafka = kafka
        self.topics: Topics = kafka.topics
        self.database_url = database_url
        self.log_dir = log_dir
        self.market = Market(rate=rate, seed=23)
        self.server = SimServer(self.market)
        self.truth: dict[str, set[int]] = defaultdict(set)  # symbol -> trade ids the sim made
        self.made_at: dict[tuple[str, int], float] = {}  # (symbol, trade id) -> monotonic time
        self.procs: dict[str, ServiceProcess] = {}
        self.faults: list[Fault] = []
        self._normalizer_limit = normalizer_max_record_bytes
        self._tasks: list[asyncio.Task[None]] = []
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> ChaosStack:
        await self._stack.__aenter__()
        await self._stack.enter_async_context(self.server)
        sub = self._stack.enter_context(self.market.subscribe())
        self._tasks.append(asyncio.create_task(self._record_truth(sub)))
        cfg = StackConfig(
            bootstrap=self.kafka.bootstrap_servers,
            database_url=self.database_url,
            sim_http=self.server.base_url,
            topic_prefix=self.kafka.topic_prefix,
            local_broker=not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
            log_dir=self.log_dir,
            rest_interval_s=2.0,
            extra_env={
                "normalizer": {"KAFKA_MAX_RECORD_BYTES": str(self._normalizer_limit)},
            },
        )
        self.procs = {name: ServiceProcess(name, cfg) for name in SERVICES}
        for proc in self.procs.values():
            proc.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        stop_all(list(self.procs.values()), timeout=5)
        await self._stack.__aexit__(None, None, None)

    async def _record_truth(self, sub: Any) -> None:
        async for tick in sub:
            if isinstance(tick, Trade):
                self.truth[tick.symbol].add(tick.trade_id)
                self.made_at[(tick.symbol, tick.trade_id)] = time.monotonic()

    # -- probes ------------------------------------------------------------------------------
    async def sql(self, query: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url, timeout=5)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def rows_after(self, since: datetime, kind: str = "trade") -> int:
        """Price rows of ``kind`` whose event was received after ``since``."""
        try:
            rows = await self.sql(
                "SELECT count(*) AS n FROM prices WHERE kind = $2 AND received_at > $1",
                since,
                kind,
            )
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return 0
        return int(rows[0]["n"])

    async def consolidated_after(self, since: datetime) -> int:
        """Consolidated prices (their own table) made of trades received after ``since``."""
        try:
            rows = await self.sql(
                "SELECT count(*) AS n FROM consolidated_prices WHERE received_at > $1", since
            )
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return 0
        return int(rows[0]["n"])

    async def trade_count(self) -> int:
        try:
            rows = await self.sql("SELECT count(*) AS n FROM prices WHERE kind = 'trade'")
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return -1
        return int(rows[0]["n"])

    async def ready(self, name: str) -> bool:
        proc = self.procs[name]
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                r = await client.get(f"{proc.health_url}/readyz")
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    async def until(self, probe: Any, what: str, timeout: float = 60) -> float:
        """Poll the async ``probe`` until true; return the seconds it took (fail with logs)."""
        start = time.monotonic()
        while True:
            if await probe():
                return time.monotonic() - start
            dead = [n for n, p in self.procs.items() if not p.running]
            if dead or time.monotonic() - start > timeout:
                tails = "\n".join(
                    f"--- {n} (running={p.running})\n{p.log_tail(25)}"
                    for n, p in self.procs.items()
                )
                raise AssertionError(f"timed out waiting for {what} (dead: {dead})\n{tails}")
            await asyncio.sleep(0.25)

    async def flowing_after(self, since: datetime, what: str, timeout: float = 60) -> float:
        """Seconds until a trade received after ``since`` is in PostgreSQL."""

        async def probe() -> bool:
            return await self.rows_after(since) > 0

        return await self.until(probe, what, timeout)

    # -- faults ------------------------------------------------------------------------------
    async def inject(self, topic: str, poisons: list[Poison]) -> list[Injected]:
        """Produce ``poisons`` to ``topic`` (huge ones only where the broker takes them)."""
        out: list[Injected] = []
        async with KafkaProducer(
            self.kafka, max_request_size=4 * 1024 * 1024, max_batch_size=4 * 1024 * 1024
        ) as producer:
            for p in poisons:
                try:
                    meta = await producer.send_and_wait(topic, p.value, key=p.key)
                except MessageSizeTooLargeError:
                    if p.huge:
                        continue  # a broker with default limits refuses it before any stage
                    raise
                out.append(Injected(p, topic, meta.partition, meta.offset))
        return out

    def kill(self, name: str) -> None:
        self.procs[name].stop(kill=True)

    def start(self, name: str) -> None:
        self.procs[name].start()

    async def dead_letters(self, min_records: int) -> dict[tuple[str, str, int, int], DeadLetter]:
        """(service, origin topic, partition, offset) -> the dead letter."""
        records = await read_topic(self.kafka, self.topics.dlq, min_records=min_records, timeout=30)
        out = {}
        for r in records:
            letter = DeadLetter.from_headers(r.headers)
            key = (
                letter.service,
                letter.origin_topic,
                letter.origin_partition,
                letter.origin_offset,
            )
            out[key] = letter
        return out

    async def raw_trades(self, poison: set[tuple[str, int, int]]) -> dict[str, set[Trade_]]:
        """venue -> {(symbol, trade id)} of every trade on the raw topics (live frames and
        backfilled REST pages), except the ``poison`` records the test injected."""
        topics = [self.topics.raw(v) for v in TRADE_VENUES]
        records = await read_topic(
            self.kafka, topics, timeout=30, until=lambda _: False, idle_s=1.0
        )
        out: dict[str, set[Trade_]] = defaultdict(set)
        for r in records:
            if (r.topic, r.partition, r.offset) in poison:
                continue
            try:
                found = trades_in(r)
            except (TypeError, ValueError, KeyError, AttributeError):
                continue  # poison
            for (venue, symbol), ids in found.items():
                out[venue] |= {(symbol, i) for i in ids}
        return out

    async def stored_trades(self) -> tuple[dict[str, set[Trade_]], int]:
        """venue -> {(symbol, trade id)} in PostgreSQL, and the duplicate count."""
        rows = await self.sql(
            "SELECT source, symbol, trade_id, count(*) AS n FROM prices"
            " WHERE kind = 'trade' AND source = ANY($1::text[]) GROUP BY 1, 2, 3",
            sorted(TRADE_VENUES),
        )
        out: dict[str, set[Trade_]] = defaultdict(set)
        dupes = 0
        for r in rows:
            out[r["source"]].add((r["symbol"], int(r["trade_id"])))
            dupes += r["n"] - 1
        return out, dupes

    async def unrecoverable(self) -> dict[str, set[Trade_]]:
        """venue -> {(symbol, trade id)} inside reported unrecoverable gaps."""
        records = await read_topic(
            self.kafka, self.topics.feed_status, timeout=30, until=lambda _: False, idle_s=1.0
        )
        out: dict[str, set[Trade_]] = defaultdict(set)
        for r in records:
            try:
                doc = json.loads(r.value)
            except (TypeError, ValueError):
                continue  # the poison the test put there
            if not isinstance(doc, dict):
                continue
            if doc.get("status") == "gap_unrecoverable" and doc.get("symbol"):
                for a, b in doc["details"]["ranges"]:
                    out[doc["source"]] |= {(doc["symbol"], i) for i in range(a, b + 1)}
        return out

    async def topic_repeats(self, topic: str, poison: set[tuple[str, int, int]]) -> tuple[int, int]:
        """(records, distinct event ids) on a canonical topic, the injected poison aside."""
        records = await read_topic(self.kafka, topic, timeout=30, until=lambda _: False, idle_s=1.0)
        ids = []
        for r in records:
            if (r.topic, r.partition, r.offset) in poison:
                continue
            ids.append(json.loads(r.value)["event_id"])
        return len(ids), len(set(ids))

    def truth_for(
        self,
        venue: str,
        between: tuple[float, float] | None = None,
        seen: set[Trade_] | None = None,
    ) -> set[Trade_]:
        """(symbol, trade id) of the trades the simulator sent ``venue``'s clients: made in
        the monotonic-time window ``between`` (if given) and, if ``seen`` (the trades on the
        raw topic) is given, not before the first one seen (the stack was still starting)."""
        lo, hi = between or (float("-inf"), float("inf"))
        first: dict[str, int] = {}
        for symbol, i in seen or ():
            first[symbol] = min(first.get(symbol, i), i)
        return {
            (symbol, i)
            for symbol in TRADE_VENUES[venue]
            for i in self.truth.get(symbol, ())
            if lo <= self.made_at.get((symbol, i), lo) <= hi
            and (seen is None or i >= first.get(symbol, i + 1))
        }


def utc_now() -> datetime:
    return datetime.now(UTC)
