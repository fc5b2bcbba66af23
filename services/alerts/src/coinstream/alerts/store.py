"""Durable alert state: engine/grouping snapshot, consumed offsets, outbox and silences.

``PostgresStore`` (asyncpg) keeps them in ``alerts_*`` tables. ``save()`` writes the snapshot,
the offsets it covers and the new outbox rows in one transaction, so after a restart the
service resumes exactly where its saved state ends: events after it are replayed, none before
it are seen twice, and every notification not yet delivered is still in the outbox.
``MemoryStore`` has the same interface for running without a database (nothing survives).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from coinstream.alerts.grouping import Notification
from coinstream.alerts.silences import Silence

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts_state (
    id          text PRIMARY KEY,
    snapshot    jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS alerts_offsets (
    group_id     text NOT NULL,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    next_offset  bigint NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
);
CREATE TABLE IF NOT EXISTS alerts_outbox (
    id               text PRIMARY KEY,
    receiver         text NOT NULL,
    notification     jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending',
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  double precision NOT NULL,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX IF NOT EXISTS alerts_outbox_pending ON alerts_outbox (status) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS alerts_silences (
    id       text PRIMARY KEY,
    silence  jsonb NOT NULL,
    ends_at  double precision NOT NULL
);
"""

Offsets = dict[tuple[str, int], int]


@dataclass
class OutboxItem:
    notification: Notification
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None

    @property
    def id(self) -> str:
        return self.notification.id


@dataclass
class Loaded:
    snapshot: dict[str, Any] | None
    offsets: Offsets
    outbox: list[OutboxItem]
    silences: list[Silence]


class Store(Protocol):
    durable: bool

    async def load(self, group_id: str) -> Loaded: ...
    async def save(
        self, group_id: str, snapshot: dict[str, Any], offsets: Offsets, new: list[OutboxItem]
    ) -> None: ...
    async def mark_sent(self, item_id: str) -> None: ...
    async def mark_failed(self, item: OutboxItem) -> None: ...
    async def reschedule(self, item: OutboxItem) -> None: ...
    async def put_silence(self, silence: Silence) -> None: ...
    async def ping(self) -> bool: ...
    async def aclose(self) -> None: ...


@dataclass
class MemoryStore:
    """No durability: used when no database URL is configured."""

    durable: bool = False
    snapshot: dict[str, Any] | None = None
    offsets: Offsets = field(default_factory=dict)
    outbox: dict[str, OutboxItem] = field(default_factory=dict)
    silences: dict[str, Silence] = field(default_factory=dict)

    async def load(self, group_id: str) -> Loaded:
        return Loaded(
            self.snapshot,
            dict(self.offsets),
            list(self.outbox.values()),
            list(self.silences.values()),
        )

    async def save(
        self, group_id: str, snapshot: dict[str, Any], offsets: Offsets, new: list[OutboxItem]
    ) -> None:
        self.snapshot = snapshot
        self.offsets.update(offsets)
        for item in new:
            self.outbox[item.id] = item

    async def mark_sent(self, item_id: str) -> None:
        self.outbox.pop(item_id, None)

    async def mark_failed(self, item: OutboxItem) -> None:
        self.outbox.pop(item.id, None)

    async def reschedule(self, item: OutboxItem) -> None:
        return None

    async def put_silence(self, silence: Silence) -> None:
        self.silences[silence.id] = silence

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


class PostgresStore:
    """asyncpg pool over the ``alerts_*`` tables (created on open)."""

    durable = True

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._closed = False

    @classmethod
    async def open(cls, dsn: str, timeout: float = 10.0) -> PostgresStore:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4, timeout=timeout)
        assert pool is not None
        async with pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(727001)")
            try:
                await conn.execute(SCHEMA)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(727001)")
        return cls(pool)

    async def load(self, group_id: str) -> Loaded:
        async with self._pool.acquire() as conn:
            row = await conn.fetchval(
                "SELECT snapshot::text FROM alerts_state WHERE id = $1", group_id
            )
            offsets = {
                (r["topic"], r["partition"]): r["next_offset"]
                for r in await conn.fetch(
                    "SELECT topic, partition, next_offset FROM alerts_offsets WHERE group_id = $1",
                    group_id,
                )
            }
            outbox = [
                OutboxItem(
                    Notification.load(json.loads(r["notification"])),
                    r["attempts"],
                    r["next_attempt_at"],
                    r["last_error"],
                )
                for r in await conn.fetch(
                    "SELECT notification::text AS notification, attempts, next_attempt_at, last_error"
                    " FROM alerts_outbox WHERE status = 'pending' ORDER BY created_at, id"
                )
            ]
            silences = [
                Silence.model_validate_json(r["silence"])
                for r in await conn.fetch("SELECT silence::text AS silence FROM alerts_silences")
            ]
        return Loaded(json.loads(row) if row else None, offsets, outbox, silences)

    async def save(
        self, group_id: str, snapshot: dict[str, Any], offsets: Offsets, new: list[OutboxItem]
    ) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO alerts_state (id, snapshot, updated_at) VALUES ($1, $2::jsonb, now())"
                " ON CONFLICT (id) DO UPDATE SET snapshot = EXCLUDED.snapshot, updated_at = now()",
                group_id,
                json.dumps(snapshot),
            )
            if offsets:
                await conn.executemany(
                    "INSERT INTO alerts_offsets (group_id, topic, partition, next_offset)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (group_id, topic, partition)"
                    " DO UPDATE SET next_offset = EXCLUDED.next_offset",
                    [(group_id, t, p, o) for (t, p), o in offsets.items()],
                )
            if new:
                await conn.executemany(
                    "INSERT INTO alerts_outbox (id, receiver, notification, next_attempt_at)"
                    " VALUES ($1, $2, $3::jsonb, $4) ON CONFLICT (id) DO NOTHING",
                    [
                        (
                            i.id,
                            i.notification.receiver,
                            json.dumps(i.notification.dump()),
                            i.next_attempt_at,
                        )
                        for i in new
                    ],
                )

    async def mark_sent(self, item_id: str) -> None:
        await self._pool.execute(
            "UPDATE alerts_outbox SET status = 'sent', sent_at = now() WHERE id = $1", item_id
        )

    async def mark_failed(self, item: OutboxItem) -> None:
        await self._pool.execute(
            "UPDATE alerts_outbox SET status = 'failed', attempts = $2, last_error = $3 WHERE id = $1",
            item.id,
            item.attempts,
            item.last_error,
        )

    async def reschedule(self, item: OutboxItem) -> None:
        await self._pool.execute(
            "UPDATE alerts_outbox SET attempts = $2, next_attempt_at = $3, last_error = $4"
            " WHERE id = $1",
            item.id,
            item.attempts,
            item.next_attempt_at,
            item.last_error,
        )

    async def put_silence(self, silence: Silence) -> None:
        await self._pool.execute(
            "INSERT INTO alerts_silences (id, silence, ends_at) VALUES ($1, $2::jsonb, $3)"
            " ON CONFLICT (id) DO UPDATE SET silence = EXCLUDED.silence, ends_at = EXCLUDED.ends_at",
            silence.id,
            silence.model_dump_json(),
            silence.ends_at,
        )

    async def ping(self) -> bool:
        try:
            await self._pool.fetchval("SELECT 1", timeout=2)
        except Exception:
            return False
        return True

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                await asyncio.wait_for(self._pool.close(), timeout=5.0)
            except Exception:  # deadline passed or connections broken: force-close
                self._pool.terminate()
