"""Versioned migrations: ordering rules (pure) and idempotent, concurrent application."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from coinstream.sink_postgres.errors import MigrationError
from coinstream.sink_postgres.migrations import (
    Migration,
    load_migrations,
    migrate,
    parse_migrations,
)
from coinstream.sink_postgres.tables import TABLES


def test_shipped_migrations_are_numbered_from_one() -> None:
    versions = [m.version for m in load_migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_gaps_and_bad_names_are_refused() -> None:
    with pytest.raises(MigrationError, match="expected 0002"):
        parse_migrations({"0001_a.sql": "", "0003_c.sql": ""})
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        parse_migrations({"1_a.sql": ""})


@pytest.mark.postgres
async def test_migrate_twice_applies_once(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        first = await migrate(conn)
        second = await migrate(conn)
        assert [m.version for m in first] == [m.version for m in load_migrations()]
        assert second == []
        for table in TABLES:
            assert await conn.fetchval("SELECT to_regclass($1)::text", table.name) == table.name
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_replicas_migrating_at_once_serialise_on_the_advisory_lock(database_url: str) -> None:
    conns = [await asyncpg.connect(database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, 0, len(load_migrations())]
        assert await conns[0].fetchval("SELECT count(*) FROM sink_postgres_migrations") == len(
            load_migrations()
        )
    finally:
        for c in conns:
            await c.close()


@pytest.mark.postgres
async def test_an_edited_applied_migration_is_an_error(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, [Migration(1, "one", "CREATE TABLE one (x int)")])
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn, [Migration(1, "one", "CREATE TABLE one (x bigint)")])
        bad = [Migration(1, "one", "CREATE TABLE one (x int)"), Migration(2, "two", "NOT SQL")]
        with pytest.raises(MigrationError, match="0002_two failed"):
            await migrate(conn, bad)
        assert await conn.fetchval("SELECT count(*) FROM sink_postgres_migrations") == 1
    finally:
        await conn.close()
