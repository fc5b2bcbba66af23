"""Table definitions: columns, natural keys, in-batch precedence and the upsert statement.

Pure data and SQL text; no I/O. ``Row`` tuples are in ``Table.columns`` order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

Row = tuple[Any, ...]
Merge = Callable[[Row, Row], Row]


@dataclass(frozen=True, slots=True)
class Table:
    """A target table and how rows for it are reduced and upserted.

    ``rank``: columns compared when two rows share a key (the greater wins; on a tie the row
    read later wins). ``guard``: the SQL condition under which a stored row is replaced; this is
    what makes replays and older revisions harmless. ``update``: the ``SET`` list (default:
    every non-key column from ``EXCLUDED``). ``merge``: combines two rows with one key instead of
    choosing one (used for first/last-seen bookkeeping). ``versioned``: every distinct version
    (key + rank) in a batch is kept, oldest first. ``merged``: rows are entity events folded
    field by field into the stored row (``entities.fold``) before they are written.
    """

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    rank: tuple[str, ...] = ("revision",)
    guard: str | None = "EXCLUDED.revision > {t}.revision"
    update: str | None = None
    time_column: str | None = None
    hypertable: bool = False
    segment_by: tuple[str, ...] = ()
    merge: Merge | None = None
    versioned: bool = False
    sort_rows: bool = False
    merged: bool = False
    _key_idx: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _rank_idx: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _key_get: Callable[[Row], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        idx = {c: i for i, c in enumerate(self.columns)}
        missing = [c for c in (*self.key, *self.rank) if c not in idx]
        if missing:
            raise ValueError(f"table {self.name}: unknown key/rank columns {missing}")
        object.__setattr__(self, "_key_idx", tuple(idx[c] for c in self.key))
        object.__setattr__(self, "_rank_idx", tuple(idx[c] for c in self.rank))
        object.__setattr__(self, "_key_get", itemgetter(*self._key_idx))

    @property
    def staging(self) -> str:
        return f"stage_{self.name}"

    def key_of(self, row: Row) -> Any:
        """A hashable key (a tuple, or the bare value for a one-column key); fast."""
        return self._key_get(row)

    @property
    def key_column_index(self) -> tuple[int, ...]:
        """Positions of the key columns in a row."""
        return self._key_idx

    def key_tuple(self, row: Row) -> tuple[Any, ...]:
        return tuple(row[i] for i in self._key_idx)

    def rank_of(self, row: Row) -> tuple[Any, ...]:
        return tuple(row[i] for i in self._rank_idx)

    def index(self, column: str) -> int:
        return self.columns.index(column)

    def create_staging_sql(self) -> str:
        return (
            f"CREATE TEMP TABLE IF NOT EXISTS {self.staging} "
            f"(LIKE {self.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )

    def upsert_sql(self) -> str:
        """``INSERT ... SELECT FROM staging ON CONFLICT (key) DO UPDATE ... WHERE guard``."""
        cols = ", ".join(self.columns)
        conflict = ", ".join(self.key)
        sql = f"INSERT INTO {self.name} ({cols}) SELECT {cols} FROM {self.staging} "
        sql += f"ON CONFLICT ({conflict}) "
        if self.update is None and self.guard is None:
            return sql + "DO NOTHING"
        update = self.update or ", ".join(
            f"{c} = EXCLUDED.{c}" for c in self.columns if c not in self.key
        )
        sql += f"DO UPDATE SET {update.format(t=self.name)}"
        if self.guard:
            sql += f" WHERE {self.guard.format(t=self.name)}"
        return sql


def _merge_instrument(old: Row, new: Row) -> Row:
    """Keep the earliest first-seen, latest last-seen and any known descriptive value."""
    out = [n if n is not None else o for o, n in zip(old, new, strict=True)]
    out[_FIRST] = min(old[_FIRST], new[_FIRST])
    out[_LAST] = max(old[_LAST], new[_LAST])
    return tuple(out)


_ENTITY_COMMON = (
    "entity_id",
    "name",
    "symbol",
    "slug",
    "description",
    "source",
    "event_id",
    "event_time",
    "revision",
    "received_at",
    "data",
)
MERGE_COLUMNS = ("field_sources", "changed_by", "changed_fields", "version_since")
"""The columns after an entity's event columns: how the merge arrived at the row."""


def _entity_table(name: str, *columns: str) -> Table:
    """A current-state entity table: rows are merged with the stored row (``entities``), so
    the upsert writes what the merge decided."""
    all_columns = (*_ENTITY_COMMON, *columns, *MERGE_COLUMNS)
    update = ", ".join(f"{c} = EXCLUDED.{c}" for c in all_columns if c != "entity_id")
    return Table(
        name,
        all_columns,
        key=("entity_id",),
        rank=("event_time", "revision"),
        guard=None,
        update=update + ", updated_at = now()",
        versioned=True,
        sort_rows=True,
        merged=True,
    )


PRICES = Table(
    "prices",
    (
        "event_time",
        "event_id",
        "source",
        "kind",
        "market",
        "symbol",
        "base",
        "quote",
        "asset_id",
        "native_symbol",
        "price",
        "size",
        "side",
        "trade_id",
        "bid",
        "bid_size",
        "ask",
        "ask_size",
        "volume_24h",
        "quote_volume_24h",
        "market_cap",
        "change_24h_pct",
        "network",
        "contract_address",
        "pool_address",
        "tx_hash",
        "quote_size",
        "revision",
        "received_at",
    ),
    key=("event_time", "event_id"),
    time_column="event_time",
    hypertable=True,
    segment_by=("source", "symbol"),
)

CONSOLIDATED_PRICES = Table(
    "consolidated_prices",
    (
        "event_time",
        "event_id",
        "source",
        "symbol",
        "base",
        "quote",
        "asset_id",
        "price",
        "bid",
        "ask",
        "volume_24h",
        "contributors",
        "revision",
        "received_at",
    ),
    key=("event_time", "event_id"),
    time_column="event_time",
    hypertable=True,
    segment_by=("symbol",),
)

CANDLES = Table(
    "candles",
    (
        "venue",
        "symbol",
        "timeframe",
        "open_time",
        "close_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "quote_volume",
        "vwap",
        "trade_count",
        "final",
        "revision",
        "event_id",
        "source",
        "received_at",
        "network",
        "pool_address",
        "contract_address",
        "estimated",
    ),
    key=("venue", "symbol", "timeframe", "open_time"),
    rank=("revision", "final"),
    # A higher revision replaces a lower one; the same revision may only become final.
    guard="(EXCLUDED.revision, EXCLUDED.final) > ({t}.revision, {t}.final)",
    time_column="open_time",
    hypertable=True,
    segment_by=("venue", "symbol"),
)

SENTIMENT = Table(
    "sentiment",
    (
        "source",
        "subject",
        "metric",
        "event_time",
        "value",
        "classification",
        "unit",
        "revision",
        "event_id",
        "received_at",
    ),
    key=("source", "subject", "metric", "event_time"),
    time_column="event_time",
    hypertable=True,
    segment_by=("subject", "metric"),
)

ASSETS = _entity_table(
    "assets",
    "categories",
    "source_ids",
    "platforms",
    "links",
    "circulating_supply",
    "total_supply",
    "max_supply",
)

EXCHANGES = _entity_table(
    "exchanges", "country", "year_established", "trust_score", "volume_24h", "links", "volume_unit"
)

DEX_PAIRS = _entity_table(
    "dex_pairs",
    "network",
    "dex",
    "contract_address",
    "base_asset_id",
    "quote_asset_id",
    "volume_24h",
    "volume_unit",
)

_INSTRUMENT_COLUMNS = (
    "venue",
    "instrument_key",
    "symbol",
    "market",
    "native_symbol",
    "base",
    "quote",
    "base_asset_id",
    "quote_asset_id",
    "entity_id",
    "name",
    "data",
    "first_seen",
    "last_seen",
)
_FIRST = _INSTRUMENT_COLUMNS.index("first_seen")
_LAST = _INSTRUMENT_COLUMNS.index("last_seen")
_INSTRUMENT_FILL = ("market", "native_symbol", "base", "quote", "base_asset_id", "quote_asset_id")

INSTRUMENTS = Table(
    "instruments",
    _INSTRUMENT_COLUMNS,
    # the price key: the symbol, qualified by market for derivatives and by asset id for an
    # asset the registry lacks (coinstream.schemas.price_key), so no two instruments collide
    key=("venue", "instrument_key"),
    rank=("last_seen",),
    update=", ".join(
        [
            "first_seen = LEAST({t}.first_seen, EXCLUDED.first_seen)",
            "last_seen = GREATEST({t}.last_seen, EXCLUDED.last_seen)",
            *(f"{c} = COALESCE(EXCLUDED.{c}, {{t}}.{c})" for c in _INSTRUMENT_FILL),
            *(f"{c} = COALESCE(EXCLUDED.{c}, {{t}}.{c})" for c in ("entity_id", "name", "data")),
        ]
    ),
    guard=(
        "EXCLUDED.last_seen > {t}.last_seen OR EXCLUDED.first_seen < {t}.first_seen"
        " OR (EXCLUDED.data IS NOT NULL AND EXCLUDED.data IS DISTINCT FROM {t}.data)"
    ),
    merge=_merge_instrument,
    sort_rows=True,
)

FEED_STATUS = Table(
    "feed_status",
    (
        "event_time",
        "event_id",
        "source",
        "status",
        "symbol",
        "channel",
        "window_start",
        "window_end",
        "cause",
        "details",
        "revision",
        "received_at",
    ),
    key=("event_time", "event_id"),
    time_column="event_time",
    hypertable=True,
    segment_by=("source",),
)

SERVICE_HEALTH = Table(
    "service_health",
    (
        "event_time",
        "event_id",
        "service",
        "instance",
        "status",
        "checks",
        "counters",
        "revision",
        "received_at",
    ),
    key=("event_time", "event_id"),
    time_column="event_time",
    hypertable=True,
    segment_by=("service",),
)

ALERT_EVENTS = Table(
    "alert_events",
    (
        "event_time",
        "event_id",
        "source",
        "fingerprint",
        "rule_id",
        "rule_type",
        "status",
        "severity",
        "subject",
        "summary",
        "labels",
        "value",
        "threshold",
        "starts_at",
        "ends_at",
        "receivers",
        "revision",
        "received_at",
    ),
    key=("event_time", "event_id"),
)

TABLES: tuple[Table, ...] = (
    PRICES,
    CONSOLIDATED_PRICES,
    CANDLES,
    SENTIMENT,
    ASSETS,
    EXCHANGES,
    DEX_PAIRS,
    INSTRUMENTS,
    FEED_STATUS,
    SERVICE_HEALTH,
    ALERT_EVENTS,
)
"""Every table the sink writes, in the order a batch writes them."""

BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}
