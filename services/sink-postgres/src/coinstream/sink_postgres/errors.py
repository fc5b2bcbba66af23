"""sink-postgres errors and the classification of database failures.

``SinkError`` is the base. ``DatabaseUnavailable`` (retriable) means the batch could not be
written for a reason that is not the data: connection lost or refused, timeouts, server
starting or shutting down, out of resources, lock or serialization conflict, missing schema or
privilege (``is_unavailable``). The sink pauses consumption and retries, for days if need be.

Every other failure is taken to be caused by the rows in hand, whatever its type (a data
exception, an integrity violation, a value asyncpg cannot encode, an error nobody foresaw):
the batch is split until each failing row stands alone (``isolate``), those rows are
dead-lettered with the reason, and the rest is written. ``RowRejected`` (not retriable) names
such a row. So no unknown error is retried forever and no bad row holds back its batch.
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


UNAVAILABLE_SQLSTATE_CLASSES = frozenset(
    {
        "08",  # connection exception
        "28",  # invalid authorization (credentials being rotated)
        "3D",  # invalid catalog name (database not there yet)
        "3F",  # invalid schema name
        "40",  # transaction rollback (serialization failure, deadlock)
        "42",  # syntax error or access rule violation (schema missing or changed, privileges)
        "53",  # insufficient resources (disk full, too many connections)
        "54",  # program limit exceeded (statement too complex)
        "55",  # object not in prerequisite state (lock not available)
        "57",  # operator intervention (shutdown, cannot connect now, statement timeout)
        "58",  # system error (I/O)
        "F0",  # configuration file error
        "XX",  # internal error
    }
)
"""SQLSTATE classes that say "the database cannot take writes now", not "this row is bad"."""


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database (or the way to it) is unavailable: retry later."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    if isinstance(exc, RowRejected):
        return False
    if isinstance(exc, OSError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None)
        return isinstance(state, str) and state[:2] in UNAVAILABLE_SQLSTATE_CLASSES
    # An InterfaceError that is not a ValueError is the connection (closed, busy), not the
    # data; asyncpg's DataError (a value it cannot encode) is both, and is the row's fault.
    return isinstance(exc, asyncpg.InterfaceError) and not isinstance(exc, ValueError)


def is_row_error(exc: BaseException) -> bool:
    """True when ``exc`` may be caused by the rows being written (see the module docstring)."""
    return not is_unavailable(exc) and isinstance(exc, Exception)
