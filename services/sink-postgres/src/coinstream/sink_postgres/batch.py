"""Batches of consumed records (pure): decode, map to rows, reduce to one row per key.

A ``Batch`` remembers, for every row, the record it came from (for dead letters) and, per
partition, the next offset to commit once the batch is in the database.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from coinstream.schemas import decode_event, describe_error
from coinstream.sink_postgres.copytext import copy_line
from coinstream.sink_postgres.fastpath import price_entry_from_json
from coinstream.sink_postgres.rows import event_rows, instruments_from_prices
from coinstream.sink_postgres.tables import INSTRUMENTS, PRICES, TABLES, Row, Table


class RecordLike(Protocol):
    """What the sink needs of a consumed Kafka record (aiokafka's ``ConsumerRecord`` fits)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> Any: ...
    @property
    def value(self) -> Any: ...


@dataclass(slots=True)
class Rejected:
    """A record that cannot be stored, and why (it goes to the dead-letter topic)."""

    record: RecordLike
    reason: str
    error: BaseException | str
    table: str | None = None


@dataclass(slots=True)
class TableBatch:
    """Rows for one table with the record each came from (parallel lists).

    ``lines``, when set, holds each row's text COPY line (parallel too): the store then loads
    the table with text COPY of those lines instead of binary COPY of the rows.
    """

    table: Table
    rows: list[Row] = field(default_factory=list)
    origins: list[RecordLike] = field(default_factory=list)
    lines: list[str] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, index: Sequence[int]) -> TableBatch:
        """The rows at ``index`` (in that order), with their origins and lines."""
        rows, origins, lines = self.rows, self.origins, self.lines
        return TableBatch(
            self.table,
            [rows[i] for i in index],
            [origins[i] for i in index],
            None if lines is None else [lines[i] for i in index],
        )


@dataclass(slots=True)
class Batch:
    """Records consumed since the last flush, decoded and grouped by table."""

    tables: dict[str, TableBatch] = field(default_factory=dict)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    records: int = 0
    started: float = field(default_factory=time.monotonic)
    newest: dict[str, datetime] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.records

    def add(self, record: RecordLike) -> None:
        """Decode one record and file its rows; an undecodable record is marked rejected."""
        self.extend((record,))

    def extend(self, records: Sequence[RecordLike]) -> None:
        """Decode records in order and file their rows (the hot loop: price events)."""
        if not records:
            return
        if self.records == 0:
            self.started = time.monotonic()
        self.records += len(records)
        offsets = self.offsets
        newest = None
        rows: list[Row] | None = None
        origins: list[RecordLike] = []
        lines: list[str] = []
        for record in records:
            offsets[(record.topic, record.partition)] = record.offset + 1
            value = record.value
            entry = price_entry_from_json(value) if value is not None else None
            if entry is None:
                self._add_slow(record)
                continue
            if rows is None:
                prices = self._prices()
                assert prices.lines is not None
                rows, origins, lines = prices.rows, prices.origins, prices.lines
            row, line = entry
            rows.append(row)
            origins.append(record)
            lines.append(line)
            received = row[-1]
            if newest is None or received > newest:
                newest = received
        if newest is not None:
            self._seen("price", newest)

    def _prices(self) -> TableBatch:
        tb = self.tables.get("prices")
        if tb is None:
            tb = self.tables["prices"] = TableBatch(PRICES, lines=[])
        return tb

    def _add_slow(self, record: RecordLike) -> None:
        """Decode through the models: any event type, or a price the fast path left alone."""
        value = record.value
        try:
            if value is None:
                raise ValueError(
                    "tombstone (the record has no value): Coinstream's canonical topics carry "
                    "no deletions"
                )
            event = decode_event(value)
            pairs = event_rows(event)
        except (ValidationError, ValueError, TypeError) as exc:
            reason = f"not a canonical event: {_short(exc)}"
            self.rejected.append(Rejected(record, reason, exc))
            return
        for table, r in pairs:
            if table is PRICES:
                tb = self._prices()
                assert tb.lines is not None
                tb.lines.append(copy_line(r))
            else:
                found = self.tables.get(table.name)
                if found is None:
                    found = self.tables[table.name] = TableBatch(table)
                tb = found
            tb.rows.append(r)
            tb.origins.append(record)
        self._seen(str(getattr(event, "type", "event")), event.received_at)

    def _seen(self, etype: str, received: datetime) -> None:
        newest = self.newest.get(etype)
        if newest is None or received > newest:
            self.newest[etype] = received

    def age_s(self) -> float:
        return time.monotonic() - self.started if self.records else 0.0

    def reduced(self) -> list[TableBatch]:
        """One ``TableBatch`` per table with one row per key, in the canonical table order."""
        tables = dict(self.tables)
        prices = tables.get("prices")
        if prices is not None:  # derive each venue pair's instrument row from its prices
            rows, index = instruments_from_prices(prices.rows)
            derived = TableBatch(INSTRUMENTS, rows, [prices.origins[i] for i in index])
            known = tables.get("instruments")
            if known is not None:
                derived.rows += known.rows
                derived.origins += known.origins
            tables["instruments"] = derived
        return [reduce_rows(tables[t.name]) for t in TABLES if t.name in tables]


def reduce_rows(tb: TableBatch) -> TableBatch:
    """Keep one row per key: the greater ``rank`` wins, a tie goes to the row read later
    (or rows are combined by ``table.merge``; versioned tables keep one row per version).
    ``INSERT ... ON CONFLICT DO UPDATE`` needs this: one statement cannot touch a row twice.
    Current-state tables come out sorted by key, so concurrent writers lock rows in one order.
    """
    table = tb.table
    key_of = table.key_of
    rank_of = table.rank_of
    versioned = table.versioned
    merge = table.merge
    if not versioned and not table.sort_rows and _all_keys_distinct(table, tb.rows):
        return tb  # the common case (time series): nothing to choose or sort
    chosen: dict[Any, int] = {}
    out_rows: list[Row] = []
    out_index: list[int] = []
    for i, row in enumerate(tb.rows):
        key = (key_of(row), rank_of(row)) if versioned else key_of(row)
        j = chosen.get(key)
        if j is None:
            chosen[key] = len(out_rows)
            out_rows.append(row)
            out_index.append(i)
        elif merge is not None:
            out_rows[j] = merge(out_rows[j], row)
            out_index[j] = i
        elif _rank(table, row) >= _rank(table, out_rows[j]):
            out_rows[j] = row
            out_index[j] = i
    if merge is not None:  # merged rows are new: lines (if any) cannot be reused
        out = TableBatch(table, out_rows, [tb.origins[i] for i in out_index])
        if tb.lines is not None:
            out.lines = [copy_line(r) for r in out_rows]
    else:
        out = tb.subset(out_index)
    if not table.sort_rows or len(out.rows) < 2:
        return out
    order = sorted(
        range(len(out.rows)),
        key=lambda k: (_sort_key(table.key_tuple(out.rows[k])), _rank(table, out.rows[k])),
    )
    return out.subset(order)


def _all_keys_distinct(table: Table, rows: Sequence[Row]) -> bool:
    """Whether no two rows share a key. Distinct values in the key's last column (the event
    id of time-series tables) prove it cheaply; otherwise compare whole keys."""
    last = table.key_column_index[-1]
    if len({r[last] for r in rows}) == len(rows):
        return True
    key_of = table.key_of
    return len({key_of(r) for r in rows}) == len(rows)


def split_rounds(table: Table, rows: Sequence[Row]) -> list[list[Row]]:
    """Split rows so no key appears twice in one statement; versions go oldest first.

    Only versioned tables can hold several rows per key after reduction; for the others this
    returns the rows as one round.
    """
    if not table.versioned:
        return [list(rows)]
    rounds: list[list[Row]] = []
    seen: dict[tuple[Any, ...], int] = {}
    for row in sorted(rows, key=lambda r: _rank(table, r)):
        key = table.key_tuple(row)
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(row)
    return rounds


def _rank(table: Table, row: Row) -> tuple[Any, ...]:
    return tuple((v is not None, v if v is not None else 0) for v in table.rank_of(row))


def _sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, v if v is not None else "") for v in key)


def _short(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return describe_error(exc)
    return str(exc)[:500]
