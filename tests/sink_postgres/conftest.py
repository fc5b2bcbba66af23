"""Fixtures for sink-postgres tests (the session fixtures live in tests/conftest.py)."""

from __future__ import annotations

import asyncpg
import pytest

from coinstream.sink_postgres.migrations import migrate


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    """A fresh database with the sink's schema applied."""
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return database_url
