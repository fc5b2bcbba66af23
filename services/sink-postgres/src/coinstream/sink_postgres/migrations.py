"""Versioned SQL migrations, applied under an advisory lock so replicas can start together.

Files ``migrations/NNNN_name.sql`` are applied in order, each in its own transaction, and
recorded in ``sink_postgres_migrations`` with a checksum. An applied file that later changes
is an error (add a new file instead). Running again applies nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from coinstream.sink_postgres.errors import MigrationError

log = logging.getLogger(__name__)

MIGRATIONS_TABLE = "sink_postgres_migrations"
ADVISORY_LOCK_ID = 0x636F696E5F736B  # "coin_sk": one lock id for every sink replica
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def parse_migrations(files: dict[str, str]) -> list[Migration]:
    """Validate file names and order: versions start at 1 and have no gaps or duplicates."""
    found: list[Migration] = []
    for filename, sql in files.items():
        m = _NAME.match(filename)
        if not m:
            raise MigrationError(f"bad migration file name {filename!r}: use NNNN_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), sql))
    found.sort(key=lambda mg: mg.version)
    for expected, mg in enumerate(found, start=1):
        if mg.version != expected:
            raise MigrationError(
                f"migration versions must be 1..N without gaps; expected {expected:04d}, "
                f"found {mg.version:04d}_{mg.name}"
            )
    return found


def load_migrations() -> list[Migration]:
    """The migrations shipped in this package."""
    root = resources.files("coinstream.sink_postgres") / "migrations"
    files = {p.name: p.read_text() for p in root.iterdir() if p.name.endswith(".sql")}
    return parse_migrations(files)


async def applied_versions(conn: asyncpg.Connection) -> dict[int, str]:
    rows = await conn.fetch(f"SELECT version, checksum FROM {MIGRATIONS_TABLE}")
    return {int(r["version"]): str(r["checksum"]) for r in rows}


async def migrate(
    conn: asyncpg.Connection, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Apply pending migrations; return those applied now. Safe to run concurrently."""
    migrations = load_migrations() if migrations is None else migrations
    await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_ID)
    try:
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = await applied_versions(conn)
        applied: list[Migration] = []
        for mg in migrations:
            if mg.version in done:
                if done[mg.version] != mg.checksum:
                    raise MigrationError(
                        f"migration {mg.version:04d}_{mg.name} changed after it was applied; "
                        "restore the original file and add a new migration instead"
                    )
                continue
            try:
                async with conn.transaction():
                    await conn.execute(mg.sql)
                    await conn.execute(
                        f"INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum) "
                        "VALUES ($1, $2, $3)",
                        mg.version,
                        mg.name,
                        mg.checksum,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    f"migration {mg.version:04d}_{mg.name} failed: {exc}; fix the SQL or the "
                    "database and start again (earlier migrations stay applied)"
                ) from exc
            log.info("migration applied", extra={"version": mg.version, "migration": mg.name})
            applied.append(mg)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_ID)
