"""The demo's summary: data tables only, alerts that fired rather than state changes."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import asyncpg
import pytest

from coinstream.devstack.summary import fired_alerts, format_line, table_counts, view_names
from coinstream.sink_postgres.migrations import migrate

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


async def _alert(
    conn: asyncpg.Connection, n: int, rule: str, fingerprint: str, status: str
) -> None:
    await conn.execute(
        "INSERT INTO alert_events (event_time, event_id, source, fingerprint, rule_id, "
        "rule_type, status, severity, summary, received_at) "
        "VALUES ($1, $2, 'alerts', $3, $4, 'x', $5, 'warning', 's', $1)",
        NOW.replace(second=n),
        f"e{n}",
        fingerprint,
        rule,
        status,
    )


@pytest.mark.postgres
async def test_counts_leave_out_bookkeeping_and_alerts_are_those_that_fired(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)  # sink-postgres's tables, views and migration record
        await conn.execute("CREATE TABLE alerts_state (id text PRIMARY KEY)")
        await conn.execute("INSERT INTO alerts_state VALUES ('engine')")
        # start-up: every service reports itself degraded, then ready (pending, resolved)
        await _alert(conn, 1, "service-degraded", "svc:ingest-ws", "pending")
        await _alert(conn, 2, "service-degraded", "svc:ingest-ws", "resolved")
        await _alert(conn, 3, "btc-above-68k", "btc", "pending")
        await _alert(conn, 4, "btc-above-68k", "btc", "firing")
        await _alert(conn, 5, "btc-above-68k", "btc", "notified")
        await _alert(conn, 6, "btc-above-68k", "btc", "firing")  # a revision of the same alert
    finally:
        await conn.close()
    assert await fired_alerts(database_url) == {"btc-above-68k": 1}
    tables = await table_counts(database_url)
    assert tables["alert_events"] == 6 and tables["prices"] == 0
    assert not [t for t in tables if t.startswith(("alerts_", "sink_postgres_"))]
    assert {"latest_prices", "daily_ohlcv"} <= set(await view_names(database_url))


def test_the_line_shows_fired_alerts_and_leaves_out_state_changes() -> None:
    topics = Counter({"coinstream.prices.v1": 10, "coinstream.alerts.v1": 8})
    line = format_line(
        12.0,
        topics,
        {"prices": 10, "alerts_offsets": 9},
        {"btc-above-68k": 1},
        {"slack": 1},
        "coinstream",
    )
    assert line == (
        "[  12.0s] topics: prices=10 | rows: prices=10 | alerts fired: btc-above-68k=1 | "
        "notifications sent: slack=1"
    )
    quiet = format_line(1.0, topics, {}, {}, {}, "coinstream")
    assert quiet.endswith("alerts fired: none | notifications sent: none")
