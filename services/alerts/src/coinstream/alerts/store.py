"""Durable alert state, per partition: engine/grouping snapshot, offset, outbox; and silences.

Replicas of one consumer group share the topics; each owns the partitions Kafka assigns it.
``PostgresStore`` keeps one row per (group, topic, partition) in ``alerts_partitions``: the
snapshot of that partition's state, the next offset it covers and an ``epoch``. ``acquire``
(on assignment) bumps the epoch and returns the state and the partition's undelivered
notifications; from then on the previous owner can neither save (``save`` checks the epoch
and raises ``FencedError``) nor start a delivery (``claim`` checks it too). ``save()`` writes
the snapshots, their offsets and the new outbox rows of all changed partitions in one
transaction, so a new owner resumes exactly where the saved state ends and every
notification not yet delivered is still in the outbox. ``MemoryStore`` has the same
interface for running without a database (nothing survives).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import msgspec

from coinstream.alerts.errors import AlertsError
from coinstream.alerts.grouping import Notification
from coinstream.alerts.silences import Silence

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts_partitions (
    group_id     text NOT NULL,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    epoch        bigint NOT NULL DEFAULT 0,
    snapshot     jsonb,
    next_offset  bigint,
    updated_at   timestamptz NOT NULL DEFAULT now(),
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
ALTER TABLE alerts_outbox ADD COLUMN IF NOT EXISTS group_id text;
ALTER TABLE alerts_outbox ADD COLUMN IF NOT EXISTS topic text;
ALTER TABLE alerts_outbox ADD COLUMN IF NOT EXISTS partition integer;
CREATE INDEX IF NOT EXISTS alerts_outbox_owner ON alerts_outbox (group_id, topic, partition)
    WHERE status IN ('pending', 'sending');
CREATE TABLE IF NOT EXISTS alerts_silences (
    id       text PRIMARY KEY,
    silence  jsonb NOT NULL,
    ends_at  timestamptz NOT NULL
);
DO $$
BEGIN
    IF (SELECT data_type FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'alerts_silences'
          AND column_name = 'ends_at') = 'double precision' THEN
        ALTER TABLE alerts_silences ALTER COLUMN ends_at TYPE timestamptz
            USING to_timestamp(ends_at);
    END IF;
END $$;
"""

TopicPartition = tuple[str, int]
Offsets = dict[TopicPartition, int]


class FencedError(AlertsError):
    """Another replica took over these partitions; this one must let them go."""

    retriable = False

    def __init__(self, partitions: list[TopicPartition]) -> None:
        super().__init__(f"partitions taken over by another replica: {partitions}")
        self.partitions = partitions


@dataclass
class OutboxItem:
    notification: Notification
    topic: str = ""
    partition: int = -1
    epoch: int = 0
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None

    @property
    def id(self) -> str:
        return self.notification.id

    @property
    def tp(self) -> TopicPartition:
        return (self.topic, self.partition)


@dataclass
class Acquired:
    """A partition's saved state, as its new owner finds it."""

    epoch: int
    snapshot: dict[str, Any] | None
    next_offset: int | None
    outbox: list[OutboxItem]


@dataclass
class PartitionSave:
    topic: str
    partition: int
    epoch: int
    snapshot: dict[str, Any]
    next_offset: int | None
    new: list[OutboxItem] = field(default_factory=list)


class Store(Protocol):
    durable: bool

    async def acquire(self, group_id: str, topic: str, partition: int) -> Acquired: ...
    async def save(self, group_id: str, parts: list[PartitionSave]) -> None: ...
    async def claim(self, group_id: str, item: OutboxItem) -> bool: ...
    async def mark_sent(self, item_id: str) -> None: ...
    async def mark_failed(self, item: OutboxItem) -> None: ...
    async def reschedule(self, item: OutboxItem) -> None: ...
    async def load_silences(self) -> list[Silence]: ...
    async def put_silence(self, silence: Silence) -> None: ...
    async def ping(self) -> bool: ...
    async def aclose(self) -> None: ...


def encode(snapshot: dict[str, Any]) -> str:
    return msgspec.json.encode(snapshot).decode()


@dataclass
class MemoryStore:
    """No durability: used when no database URL is configured."""

    durable: bool = False
    parts: dict[TopicPartition, dict[str, Any]] = field(default_factory=dict)
    outbox: dict[str, OutboxItem] = field(default_factory=dict)
    silences: dict[str, Silence] = field(default_factory=dict)

    async def acquire(self, group_id: str, topic: str, partition: int) -> Acquired:
        row = self.parts.setdefault((topic, partition), {"epoch": 0})
        row["epoch"] += 1
        items = [i for i in self.outbox.values() if i.tp == (topic, partition)]
        for i in items:
            i.epoch = row["epoch"]
        snapshot = row.get("snapshot")
        return Acquired(
            row["epoch"], json.loads(snapshot) if snapshot else None, row.get("next_offset"), items
        )

    async def save(self, group_id: str, parts: list[PartitionSave]) -> None:
        fenced = [
            (p.topic, p.partition)
            for p in parts
            if self.parts.get((p.topic, p.partition), {}).get("epoch") != p.epoch
        ]
        if fenced:
            raise FencedError(fenced)
        for p in parts:
            row = self.parts[(p.topic, p.partition)]
            row["snapshot"] = encode(p.snapshot)  # as stored: the encoded text
            if p.next_offset is not None:
                row["next_offset"] = p.next_offset
            for item in p.new:
                self.outbox[item.id] = item

    async def claim(self, group_id: str, item: OutboxItem) -> bool:
        row = self.parts.get(item.tp)
        return item.id in self.outbox and row is not None and row["epoch"] == item.epoch

    async def mark_sent(self, item_id: str) -> None:
        self.outbox.pop(item_id, None)

    async def mark_failed(self, item: OutboxItem) -> None:
        self.outbox.pop(item.id, None)

    async def reschedule(self, item: OutboxItem) -> None:
        return None

    async def load_silences(self) -> list[Silence]:
        return list(self.silences.values())

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

    async def acquire(self, group_id: str, topic: str, partition: int) -> Acquired:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO alerts_partitions (group_id, topic, partition, epoch)"
                " VALUES ($1, $2, $3, 1) ON CONFLICT (group_id, topic, partition)"
                " DO UPDATE SET epoch = alerts_partitions.epoch + 1, updated_at = now()"
                " RETURNING epoch, snapshot::text AS snapshot, next_offset",
                group_id,
                topic,
                partition,
            )
            # Rows queued before outboxes were per partition: the first owner adopts them.
            await conn.execute(
                "UPDATE alerts_outbox SET group_id = $1, topic = $2, partition = $3"
                " WHERE topic IS NULL AND status IN ('pending', 'sending')",
                group_id,
                topic,
                partition,
            )
            rows = await conn.fetch(
                "SELECT notification::text AS notification, attempts, next_attempt_at, last_error"
                " FROM alerts_outbox WHERE group_id = $1 AND topic = $2 AND partition = $3"
                " AND status IN ('pending', 'sending') ORDER BY created_at, id",
                group_id,
                topic,
                partition,
            )
        epoch = int(row["epoch"])
        outbox = [
            OutboxItem(
                Notification.load(json.loads(r["notification"])),
                topic,
                partition,
                epoch,
                r["attempts"],
                r["next_attempt_at"],
                r["last_error"],
            )
            for r in rows
        ]
        snapshot = json.loads(row["snapshot"]) if row["snapshot"] else None
        return Acquired(epoch, snapshot, row["next_offset"], outbox)

    async def save(self, group_id: str, parts: list[PartitionSave]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            fenced = []
            for p in parts:
                status = await conn.execute(
                    "UPDATE alerts_partitions SET snapshot = $5::jsonb,"
                    " next_offset = COALESCE($6, next_offset), updated_at = now()"
                    " WHERE group_id = $1 AND topic = $2 AND partition = $3 AND epoch = $4",
                    group_id,
                    p.topic,
                    p.partition,
                    p.epoch,
                    encode(p.snapshot),
                    p.next_offset,
                )
                if status != "UPDATE 1":
                    fenced.append((p.topic, p.partition))
            if fenced:
                raise FencedError(fenced)  # rolls the whole transaction back
            new = [(p, i) for p in parts for i in p.new]
            if new:
                await conn.executemany(
                    "INSERT INTO alerts_outbox (id, receiver, notification, next_attempt_at,"
                    " group_id, topic, partition) VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7)"
                    " ON CONFLICT (id) DO NOTHING",
                    [
                        (
                            i.id,
                            i.notification.receiver,
                            json.dumps(i.notification.dump()),
                            i.next_attempt_at,
                            group_id,
                            p.topic,
                            p.partition,
                        )
                        for p, i in new
                    ],
                )

    async def claim(self, group_id: str, item: OutboxItem) -> bool:
        """Mark the item as being sent, if this owner's epoch still holds its partition."""
        status = await self._pool.execute(
            "UPDATE alerts_outbox o SET status = 'sending' FROM alerts_partitions p"
            " WHERE o.id = $1 AND o.status IN ('pending', 'sending')"
            " AND p.group_id = $2 AND p.topic = o.topic AND p.partition = o.partition"
            " AND o.group_id = $2 AND p.epoch = $3",
            item.id,
            group_id,
            item.epoch,
        )
        return bool(status == "UPDATE 1")

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
            "UPDATE alerts_outbox SET status = 'pending', attempts = $2, next_attempt_at = $3,"
            " last_error = $4 WHERE id = $1 AND status IN ('pending', 'sending')",
            item.id,
            item.attempts,
            item.next_attempt_at,
            item.last_error,
        )

    async def load_silences(self) -> list[Silence]:
        rows = await self._pool.fetch("SELECT silence::text AS silence FROM alerts_silences")
        return [Silence.model_validate_json(r["silence"]) for r in rows]

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
