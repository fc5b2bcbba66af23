"""The PostgreSQL adapter: one transaction per batch, staging COPY + ``INSERT ... ON CONFLICT``.

The store owns one dedicated connection (batches are written one after another) with a temp
staging table per target table, created once per connection. Failures are classified:
rejected rows are isolated by splitting the batch inside savepoints and reported back; any
other failure drops the connection and raises ``DatabaseUnavailable`` for the caller to retry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from coinstream.runtime import ResourceClosedError
from coinstream.sink_postgres.batch import RecordLike, TableBatch, split_rounds
from coinstream.sink_postgres.entities import HISTORY_COLUMNS, Current, current_from_db, fold
from coinstream.sink_postgres.errors import DatabaseUnavailable, is_row_error
from coinstream.sink_postgres.isolate import isolate
from coinstream.sink_postgres.tables import TABLES, Row, Table

log = logging.getLogger(__name__)

_HISTORY_SQL = (
    f"INSERT INTO metadata_history ({', '.join(HISTORY_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i + 1}' for i in range(len(HISTORY_COLUMNS)))}) "
    "ON CONFLICT (entity_id, valid_from) DO NOTHING"
)


@dataclass(slots=True)
class RowFailure:
    table: str
    record: RecordLike
    error: BaseException

    @property
    def reason(self) -> str:
        state = getattr(self.error, "sqlstate", None)
        prefix = f"SQLSTATE {state}: " if state else ""
        return f"{self.table}: {prefix}{self.error}"


@dataclass(slots=True)
class WriteResult:
    staged: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    rejected: list[RowFailure] = field(default_factory=list)
    seconds: float = 0.0


def _affected(status: str) -> int:
    """Row count from a command tag such as ``INSERT 0 42``."""
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0


class Store:
    """Writes reduced batches. ``async with`` connects lazily and closes; not reopenable."""

    def __init__(
        self,
        dsn: str,
        *,
        connect_timeout_s: float = 5.0,
        statement_timeout_ms: int = 60_000,
        application_name: str = "coinstream-sink-postgres",
        tables: Sequence[Table] = TABLES,
    ) -> None:
        self._dsn = dsn
        self._timeout = connect_timeout_s
        self._server_settings = {
            "application_name": application_name,
            "statement_timeout": str(statement_timeout_ms),
        }
        self._tables = tuple(tables)
        self._upsert_sql = {t.name: t.upsert_sql() for t in self._tables}
        self._select_current_sql = {
            t.name: (
                "SELECT entity_id, data::text AS data, field_sources::text AS field_sources,"
                f" changed_by, changed_fields, version_since FROM {t.name}"
                " WHERE entity_id = ANY($1::text[]) ORDER BY entity_id FOR UPDATE"
            )
            for t in self._tables
            if t.merged
        }
        self._conn: asyncpg.Connection | None = None
        self._closed = False

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection (terminate it if closing hangs). Safe to call twice."""
        self._closed = True
        await self._drop_connection(graceful=True)

    async def _drop_connection(self, graceful: bool = False) -> None:
        conn, self._conn = self._conn, None
        if conn is None or conn.is_closed():
            return
        if graceful:
            try:
                await conn.close(timeout=self._timeout)
                return
            except Exception:  # fall through to terminate
                pass
        conn.terminate()

    async def connection(self) -> asyncpg.Connection:
        """The live connection, connecting (and creating staging tables) when needed."""
        if self._closed:
            raise ResourceClosedError("Store is closed; create a new one")
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        conn = await asyncpg.connect(
            self._dsn, timeout=self._timeout, server_settings=self._server_settings
        )
        try:
            for table in self._tables:
                await conn.execute(table.create_staging_sql())
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        return conn

    async def ping(self) -> None:
        """Raise ``DatabaseUnavailable`` unless a trivial query succeeds."""
        try:
            conn = await self.connection()
            await conn.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            await self._drop_connection()
            raise DatabaseUnavailable(f"database not reachable: {exc!r}") from exc

    async def write(self, batches: Sequence[TableBatch]) -> WriteResult:
        """Write every table's rows in ONE transaction; isolate rejected rows if any.

        Raises ``DatabaseUnavailable`` for anything that is not the rows' fault; the
        connection is then dropped and the whole batch may be retried as it is.
        """
        started = time.perf_counter()
        try:
            conn = await self.connection()
            try:
                result = await self._write_all(conn, batches)
            except Exception as exc:
                if not is_row_error(exc):
                    raise
                log.warning("database rejected rows; isolating them", extra={"error": str(exc)})
                result = await self._write_isolating(conn, batches)
        except ResourceClosedError:
            raise
        except Exception as exc:
            await self._drop_connection()
            raise DatabaseUnavailable(f"batch not written: {exc!r}") from exc
        except BaseException:  # cancelled mid-write: the connection state is unknown
            await self._drop_connection()
            raise
        result.seconds = time.perf_counter() - started
        return result

    async def _write_all(
        self, conn: asyncpg.Connection, batches: Sequence[TableBatch]
    ) -> WriteResult:
        result = WriteResult()
        async with conn.transaction():
            for tb in batches:
                result.staged[tb.table.name] = len(tb.rows)
                result.changed[tb.table.name] = await self._upsert(conn, tb)
        return result

    async def _upsert(self, conn: asyncpg.Connection, tb: TableBatch) -> int:
        table, rows = tb.table, tb.rows
        if not rows:
            return 0
        if table.merged:
            return await self._upsert_merged(conn, table, rows)
        if table.versioned:
            return await self._upsert_versions(conn, table, rows)
        if tb.lines is not None:  # pre-encoded: text COPY costs the client almost nothing
            data = "".join(tb.lines).encode()
            await conn.copy_to_table(
                table.staging, source=memoryview(data), columns=table.columns, format="text"
            )
        else:
            await conn.copy_records_to_table(table.staging, records=rows, columns=table.columns)
        status = await conn.execute(self._upsert_sql[table.name])
        return _affected(status)

    async def _upsert_versions(
        self, conn: asyncpg.Connection, table: Table, rows: Sequence[Row]
    ) -> int:
        """Several versions of one entity: one statement per round, oldest version first."""
        changed = 0
        for part in split_rounds(table, rows):
            await conn.copy_records_to_table(table.staging, records=part, columns=table.columns)
            changed += _affected(await conn.execute(self._upsert_sql[table.name]))
            await conn.execute(f"DELETE FROM {table.staging}")
        return changed

    async def _upsert_merged(
        self, conn: asyncpg.Connection, table: Table, rows: Sequence[Row]
    ) -> int:
        """Entity events folded into the stored rows (locked), written only if they changed
        something; superseded versions go to ``metadata_history`` (see ``entities``)."""
        ids = sorted({row[0] for row in rows})
        stored: dict[str, Current] = {}
        for record in await conn.fetch(self._select_current_sql[table.name], ids):
            try:
                stored[record["entity_id"]] = current_from_db(record)
            except ValueError as exc:  # written under an older contract: start afresh
                log.warning(
                    "stored entity no longer meets the contract; rebuilt from new events",
                    extra={"entity_id": record["entity_id"], "error": str(exc)[:300]},
                )
        folded = fold(table, stored, rows)
        if folded.history:
            await conn.executemany(_HISTORY_SQL, folded.history)
        if not folded.current:
            return 0
        await conn.copy_records_to_table(
            table.staging, records=folded.current, columns=table.columns
        )
        await conn.execute(self._upsert_sql[table.name])
        await conn.execute(f"DELETE FROM {table.staging}")
        return len(folded.current)

    async def _write_isolating(
        self, conn: asyncpg.Connection, batches: Sequence[TableBatch]
    ) -> WriteResult:
        result = WriteResult()
        async with conn.transaction():
            for tb in batches:
                table = tb.table
                changed = 0

                async def attempt(
                    chunk: Sequence[int], table: Table = table, tb: TableBatch = tb
                ) -> None:
                    nonlocal changed
                    async with conn.transaction():  # a savepoint: all or nothing
                        n = await self._upsert(conn, tb.subset(chunk))
                        await conn.execute(f"DELETE FROM {table.staging}")
                    changed += n

                bad = await isolate(range(len(tb.rows)), attempt, is_row_error)
                result.staged[table.name] = len(tb.rows)
                result.changed[table.name] = changed
                result.rejected += [RowFailure(table.name, tb.origins[i], err) for i, err in bad]
        return result
