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

from coinstream.schemas import decode_event
from coinstream.sink_postgres.fastpath import price_row_from_json
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
    """Rows for one table with the record each came from (parallel lists)."""

    table: Table
    rows: list[Row] = field(default_factory=list)
    origins: list[RecordLike] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


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
        if self.records == 0:
            self.started = time.monotonic()
        self.records += 1
        self.offsets[(record.topic, record.partition)] = record.offset + 1
        value = record.value
        row = price_row_from_json(value) if value is not None else None
        if row is not None:  # the hot path: a canonical trade/quote
            tb = self.tables.get("prices")
            if tb is None:
                tb = self.tables["prices"] = TableBatch(PRICES)
            tb.rows.append(row)
            tb.origins.append(record)
            self._seen("price", row[-1])
            return
        try:
            if value is None:
                raise ValueError("record has no value (tombstone)")
            event = decode_event(value)
            pairs = event_rows(event)
        except (ValidationError, ValueError, TypeError) as exc:
            reason = f"not a canonical event: {_short(exc)}"
            self.rejected.append(Rejected(record, reason, exc))
            return
        for table, r in pairs:
            tb = self.tables.get(table.name)
            if tb is None:
                tb = self.tables[table.name] = TableBatch(table)
            tb.rows.append(r)
            tb.origins.append(record)
        self._seen(str(getattr(event, "type", "event")), event.received_at)

    def _seen(self, etype: str, received: datetime) -> None:
        newest = self.newest.get(etype)
        if newest is None or received > newest:
            self.newest[etype] = received

    def extend(self, records: Sequence[RecordLike]) -> None:
        for record in records:
            self.add(record)

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
    chosen: dict[Any, int] = {}
    origins = tb.origins
    out_rows: list[Row] = []
    out_origins: list[RecordLike] = []
    for i, row in enumerate(tb.rows):
        key = (key_of(row), rank_of(row)) if versioned else key_of(row)
        j = chosen.get(key)
        if j is None:
            chosen[key] = len(out_rows)
            out_rows.append(row)
            out_origins.append(origins[i])
        elif merge is not None:
            out_rows[j] = merge(out_rows[j], row)
            out_origins[j] = origins[i]
        elif _rank(table, row) >= _rank(table, out_rows[j]):
            out_rows[j] = row
            out_origins[j] = origins[i]
    if not table.sort_rows or len(out_rows) < 2:
        return TableBatch(table, out_rows, out_origins)
    order = sorted(
        range(len(out_rows)),
        key=lambda k: (_sort_key(table.key_tuple(out_rows[k])), _rank(table, out_rows[k])),
    )
    return TableBatch(table, [out_rows[k] for k in order], [out_origins[k] for k in order])


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
        errs = exc.errors(include_url=False)[:3]
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errs)
    return str(exc)[:500]
