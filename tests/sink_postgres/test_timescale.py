"""TimescaleDB detection and the hypertable plan."""

from __future__ import annotations

import asyncpg
import pytest

from coinstream.sink_postgres.migrations import migrate
from coinstream.sink_postgres.tables import ALERT_EVENTS, ASSETS, CANDLES, PRICES
from coinstream.sink_postgres.timescale import (
    TimescalePolicy,
    apply_timescale,
    hypertable_statements,
    plan,
    timescale_available,
)


def test_time_series_tables_become_hypertables_with_policies() -> None:
    policy = TimescalePolicy(chunk_interval="1 day", compress_after="7 days", retention="90 days")
    stmts = hypertable_statements(CANDLES, policy)
    assert stmts[0].startswith("SELECT create_hypertable('candles', by_range('open_time'")
    assert "if_not_exists => true" in stmts[0]
    assert "timescaledb.compress_segmentby = 'venue,symbol'" in stmts[1]
    assert "add_compression_policy('candles', INTERVAL '7 days'" in stmts[2]
    assert "add_retention_policy('candles', INTERVAL '90 days'" in stmts[3]


def test_current_state_and_alert_tables_stay_plain() -> None:
    assert hypertable_statements(ASSETS, TimescalePolicy()) == []
    assert hypertable_statements(ALERT_EVENTS, TimescalePolicy()) == []
    tables = {s.split("'")[1] for s in plan(TimescalePolicy()) if "create_hypertable" in s}
    assert PRICES.name in tables and "assets" not in tables


def test_no_compression_or_retention_when_unset() -> None:
    stmts = hypertable_statements(PRICES, TimescalePolicy(compress_after=None, retention=None))
    assert len(stmts) == 1


@pytest.mark.postgres
async def test_without_timescale_the_plain_tables_are_used(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        available = await timescale_available(conn)
        assert await apply_timescale(conn, TimescalePolicy()) is available
        if not available:
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"
                )
                == 0
            )
    finally:
        await conn.close()
