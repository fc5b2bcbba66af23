"""Split-isolation of rejected rows (pure: the attempt is a function over a list)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import pytest

from coinstream.sink_postgres.errors import RowRejected, is_row_error, is_unavailable
from coinstream.sink_postgres.isolate import isolate


class FakeTable:
    """All-or-nothing writes that reject any chunk holding a negative number."""

    def __init__(self) -> None:
        self.stored: list[int] = []
        self.attempts = 0

    async def attempt(self, chunk: Sequence[int]) -> None:
        self.attempts += 1
        bad = [x for x in chunk if x < 0]
        if bad:
            raise RowRejected(f"negative value {bad[0]}")
        self.stored.extend(chunk)


async def test_bad_rows_are_isolated_and_the_rest_written() -> None:
    t = FakeTable()
    items = list(range(100))
    items[17] = -17
    items[80] = -80
    rejected = await isolate(items, t.attempt, is_row_error)
    assert [item for item, _ in rejected] == [-17, -80]
    assert all("negative value" in str(err) for _, err in rejected)
    assert sorted(t.stored) == sorted(x for x in items if x >= 0)
    assert t.attempts <= 2 * 2 * 7 + 1  # about 2k log2(n)


async def test_a_clean_batch_takes_one_attempt() -> None:
    t = FakeTable()
    assert await isolate(list(range(10)), t.attempt, is_row_error) == []
    assert t.attempts == 1


async def test_every_row_bad() -> None:
    t = FakeTable()
    rejected = await isolate([-1, -2, -3], t.attempt, is_row_error)
    assert [x for x, _ in rejected] == [-1, -2, -3] and t.stored == []


async def test_other_errors_propagate_unchanged() -> None:
    async def down(chunk: Sequence[int]) -> None:
        raise ConnectionResetError("server closed the connection")

    with pytest.raises(ConnectionResetError):
        await isolate([1, 2, 3], down, is_row_error)


def test_row_errors_are_data_and_integrity_sqlstates() -> None:
    assert is_row_error(asyncpg.CheckViolationError("check"))
    assert is_row_error(asyncpg.CharacterNotInRepertoireError("nul byte"))
    assert is_row_error(asyncpg.NumericValueOutOfRangeError("too big"))
    assert not is_row_error(asyncpg.AdminShutdownError("shutdown"))
    assert not is_row_error(asyncpg.UndefinedTableError("no table"))
    assert not is_row_error(ConnectionRefusedError())


def test_errors_nobody_foresaw_are_decided_per_row_not_retried_forever() -> None:
    """asyncpg's own encoder errors (plain ValueError), overflows and unknown errors are the
    rows' business: isolated, never an endless retry of the batch."""
    assert is_row_error(
        ValueError("cannot encode Decimal value into numeric: exponent is too large")
    )
    assert is_row_error(OverflowError("int too big"))
    assert is_row_error(KeyError("surprise"))
    assert is_row_error(asyncpg.DataError("invalid input"))


def test_unavailability_is_retried_not_dead_lettered() -> None:
    for exc in (
        ConnectionResetError(),
        TimeoutError(),
        OSError("network unreachable"),
        asyncpg.CannotConnectNowError("starting up"),
        asyncpg.TooManyConnectionsError("too many"),
        asyncpg.SerializationError("conflict"),
        asyncpg.InsufficientPrivilegeError("denied"),
        asyncpg.DiskFullError("full"),
        asyncpg.ConnectionDoesNotExistError("gone"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    ):
        assert is_unavailable(exc) and not is_row_error(exc), exc
