"""Live pipeline summary: messages per topic, rows per data table, alerts fired and delivered.

Topic counts come from a group-less consumer that reads every topic from the beginning and
counts what it sees (end offsets are not used: the local broker misreports them). Rows are
counted in the tables that hold market data, not in the services' bookkeeping tables. An
alert counts once it fires: the alerts topic also carries every pending and resolved state
change (services report themselves degraded while they start), which are not alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer

from coinstream.devstack.kafkatools import wait_for_partitions
from coinstream.runtime.kafka import connection_kwargs
from coinstream.runtime.settings import KafkaSettings

log = logging.getLogger(__name__)


class TopicCounter:
    """Counts records per topic for the given topics, continuously, from offset 0."""

    def __init__(self, settings: KafkaSettings, topics: list[str]) -> None:
        self.settings = settings
        self.topics = topics
        self.counts: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(
            **connection_kwargs(self.settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        parts = await wait_for_partitions(self.settings, self.topics)
        await consumer.start()
        try:
            consumer.assign(parts)
            await consumer.seek_to_beginning()
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
                for tp, recs in batch.items():
                    self.counts[tp.topic] += len(recs)
        finally:
            await consumer.stop()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="topic-counter")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


INTERNAL_TABLES = ("alerts_", "sink_postgres_")
"""Prefixes of bookkeeping tables: the alerts service's state, offsets, outbox and silences,
and sink-postgres's migration record."""


def is_internal(table: str) -> bool:
    return table.startswith(INTERNAL_TABLES)


async def table_counts(database_url: str) -> dict[str, int]:
    """Row count of every data table in the public schema (bookkeeping tables left out)."""
    try:
        conn = await asyncpg.connect(database_url, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        log.debug("database not reachable for summary: %r", exc)
        return {}
    try:
        names = await conn.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name"
        )
        counts = {}
        for row in names:
            name = row["table_name"]
            if is_internal(name):
                continue
            counts[name] = int(await conn.fetchval(f'SELECT count(*) FROM "{name}"'))
        return counts
    finally:
        await conn.close()


async def fired_alerts(database_url: str) -> dict[str, int]:
    """Alerts that fired, per rule (distinct alerts, not state changes), from what
    sink-postgres stored of the alerts topic."""
    try:
        conn = await asyncpg.connect(database_url, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        log.debug("database not reachable for summary: %r", exc)
        return {}
    try:
        rows = await conn.fetch(
            "SELECT rule_id, count(DISTINCT fingerprint) AS n FROM alert_events "
            "WHERE status = 'firing' GROUP BY rule_id ORDER BY rule_id"
        )
    except asyncpg.UndefinedTableError:
        return {}  # not migrated yet
    finally:
        await conn.close()
    return {str(r["rule_id"]): int(r["n"]) for r in rows}


async def view_names(database_url: str) -> list[str]:
    """The views in the public schema (sink-postgres creates them when it migrates)."""
    try:
        conn = await asyncpg.connect(database_url, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return []
    try:
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.views WHERE table_schema = 'public' "
            "ORDER BY table_name"
        )
    finally:
        await conn.close()
    return [str(r["table_name"]) for r in rows]


async def webhook_deliveries(sim_http: str) -> dict[str, int]:
    """How many notifications the simulator's receivers (chat, webhook, SMTP) recorded."""
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            state = (await http.get(f"{sim_http}/_sim/state")).json()
    except (httpx.HTTPError, ValueError):
        return {}
    recs = state.get("recordings", {})
    receivers = {"slack", "telegram", "discord", "webhook", "smtp"}
    return {k: v for k, v in recs.items() if k in receivers}


def _short(topic: str, prefix: str) -> str:
    return topic.removeprefix(prefix + ".").removesuffix(".v1")


def format_line(
    elapsed: float,
    topics: Counter[str],
    tables: dict[str, int],
    fired: dict[str, int],
    delivered: dict[str, int],
    prefix: str,
) -> str:
    """One summary line. The alerts topic is left out of the topic counts: its records are
    state changes, summarised as the alerts that fired and the notifications delivered."""
    alerts_topic = f"{prefix}.alerts.v1"
    t = " ".join(
        f"{_short(k, prefix)}={v}" for k, v in sorted(topics.items()) if v and k != alerts_topic
    )
    r = " ".join(f"{k}={v}" for k, v in tables.items() if v and not is_internal(k))
    f = " ".join(f"{k}={v}" for k, v in fired.items()) or "none"
    d = " ".join(f"{k}={v}" for k, v in delivered.items()) or "none"
    return (
        f"[{elapsed:6.1f}s] topics: {t or '-'} | rows: {r or '-'} | "
        f"alerts fired: {f} | notifications sent: {d}"
    )
