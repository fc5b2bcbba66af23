"""sink-postgres errors and the classification of database failures.

``SinkError`` is the base. ``DatabaseUnavailable`` (retriable) means the batch could not be
written for a reason that is not the data: connection lost, server starting or shutting down,
lock or serialization conflict, missing schema. The sink pauses consumption and retries.
``RowRejected`` (not retriable) means PostgreSQL refused a row's data (SQLSTATE class 22 data
exception or 23 integrity violation); the row is isolated and dead-lettered.
"""

from __future__ import annotations

import asyncpg

from coinstream.runtime import CoinstreamError


class SinkError(CoinstreamError):
    """Base of every sink-postgres error."""


class DatabaseUnavailable(SinkError):
    """The database cannot take the batch now; retry later (nothing is skipped)."""

    retriable = True


class RowRejected(SinkError):
    """PostgreSQL rejected a row's data; retrying the same row cannot succeed."""

    retriable = False


class MigrationError(SinkError):
    """A migration failed or an applied migration was changed after it ran.

    Fix the schema or restore the original migration file; never edit applied migrations,
    add a new numbered file instead.
    """


ROW_SQLSTATE_CLASSES = ("22", "23")
"""SQLSTATE classes caused by a row's values (data exception, integrity constraint)."""


def is_row_error(exc: BaseException) -> bool:
    """True when ``exc`` is PostgreSQL refusing the data itself, not the connection or schema."""
    if isinstance(exc, RowRejected):
        return True
    state = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.PostgresError) and isinstance(state, str):
        return state[:2] in ROW_SQLSTATE_CLASSES
    # Values asyncpg cannot encode for a column (its client-side DataError) are row errors too.
    return isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError)
