"""TimescaleDB: when the extension is available, time-series tables become hypertables.

Without the extension the plain tables work unchanged (that is the default here). Detection
and the statements are separate so the plan can be checked without TimescaleDB.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from coinstream.sink_postgres.tables import TABLES, Table

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TimescalePolicy:
    chunk_interval: str = "1 day"
    compress_after: str | None = "7 days"
    retention: str | None = None


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def hypertable_statements(table: Table, policy: TimescalePolicy) -> list[str]:
    """Idempotent statements that turn ``table`` into a hypertable with its policies."""
    if not table.hypertable or table.time_column is None:
        return []
    t, col = table.name, table.time_column
    stmts = [
        f"SELECT create_hypertable({_lit(t)}, by_range({_lit(col)}, "
        f"INTERVAL {_lit(policy.chunk_interval)}), if_not_exists => true, "
        "migrate_data => true)"
    ]
    if policy.compress_after:
        segment = ",".join(table.segment_by)
        alter = (
            f"ALTER TABLE {t} SET (timescaledb.compress, "
            f"timescaledb.compress_segmentby = {_lit(segment)}, "
            f"timescaledb.compress_orderby = {_lit(col + ' DESC')})"
        )
        # Only once: changing settings of a table with compressed chunks fails.
        stmts.append(
            "DO $ts$ BEGIN IF NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables "
            f"WHERE hypertable_name = {_lit(t)} AND compression_enabled) THEN {alter}; "
            "END IF; END $ts$"
        )
        stmts.append(
            f"SELECT add_compression_policy({_lit(t)}, INTERVAL {_lit(policy.compress_after)}, "
            "if_not_exists => true)"
        )
    if policy.retention:
        stmts.append(
            f"SELECT add_retention_policy({_lit(t)}, INTERVAL {_lit(policy.retention)}, "
            "if_not_exists => true)"
        )
    return stmts


def plan(policy: TimescalePolicy, tables: tuple[Table, ...] = TABLES) -> list[str]:
    """Every statement for every time-series table."""
    return [s for t in tables for s in hypertable_statements(t, policy)]


async def timescale_available(conn: asyncpg.Connection) -> bool:
    """True when the server can load TimescaleDB (installed or installable)."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
        )
    )


async def apply_timescale(conn: asyncpg.Connection, policy: TimescalePolicy) -> bool:
    """Create the extension and hypertables if TimescaleDB is there; return whether it was.

    Runs under the migration advisory lock. Failure to load the extension (for example it is
    not in ``shared_preload_libraries``) leaves plain tables and is logged, not fatal.
    """
    if not await timescale_available(conn):
        log.info("TimescaleDB not available; using plain tables")
        return False
    try:
        async with conn.transaction():
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            for stmt in plan(policy):
                await conn.execute(stmt)
    except asyncpg.PostgresError as exc:
        log.warning("TimescaleDB present but not usable; plain tables", extra={"error": str(exc)})
        return False
    log.info("TimescaleDB hypertables in place")
    return True
