"""Current entity rows merged field by field, and history only for real changes (pure).

Assets, exchanges and DEX pairs are described by several sources and endpoints, thin ones and
rich ones. The store reads each entity's current row (its event in ``data`` and the per-field
provenance in ``field_sources``) under a row lock, folds the batch's events into it with
``coinstream.schemas.merge_metadata`` and writes back only entities that changed.

Replacing a known descriptive value (a new name, another description, a changed link) starts
a new version: the superseded one goes to ``metadata_history`` with the source that made it
and the fields it changed. Figures that move on every poll (supplies, volumes, trust score,
attributes) and fields filled for the first time (a first description, another source's
links) update the current version in place: history holds superseded values only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from coinstream.schemas import AssetMetadataEvent, merge_metadata
from coinstream.sink_postgres.rows import metadata_rows
from coinstream.sink_postgres.tables import MERGE_COLUMNS, Row, Table

VOLATILE = frozenset(
    {"circulating_supply", "total_supply", "volume_24h", "trust_score", "attributes"}
)
"""Fields that change with the market, not with the entity: no new version."""

HISTORY_COLUMNS = (
    "entity_id",
    "valid_from",
    "valid_to",
    "entity",
    "name",
    "symbol",
    "slug",
    "description",
    "data",
    "changed_by",
    "changed_fields",
)


@dataclass(slots=True)
class Current:
    """An entity's current row as the merge needs it."""

    event: AssetMetadataEvent
    provenance: dict[str, list[Any]] = field(default_factory=dict)
    changed_by: str | None = None
    """The source that made the current version (``event.source`` made the last update)."""
    changed_fields: list[str] = field(default_factory=list)
    version_since: datetime | None = None


@dataclass(slots=True)
class Folded:
    """The rows to write: current rows of changed entities and superseded versions."""

    current: list[Row] = field(default_factory=list)
    history: list[Row] = field(default_factory=list)


def current_from_db(record: Mapping[str, Any]) -> Current:
    """A stored row (``data`` and ``field_sources`` as JSON text) as a ``Current``."""
    sources = record["field_sources"]
    return Current(
        AssetMetadataEvent.model_validate_json(record["data"]),
        json.loads(sources) if sources else {},
        record["changed_by"],
        list(record["changed_fields"] or ()),
        record["version_since"],
    )


def fold(table: Table, stored: Mapping[str, Current], rows: Iterable[Row]) -> Folded:
    """Fold the events in ``rows`` (entity rows of ``table``, oldest first) into the stored
    entities; return only what changed."""
    data_at = table.index("data")
    state = dict(stored)
    touched: dict[str, Current] = {}
    history: list[Row] = []
    for row in rows:
        incoming = AssetMetadataEvent.model_validate_json(row[data_at])
        key = incoming.entity_id
        cur = state.get(key)
        merged = merge_metadata(
            cur.event if cur else None, incoming, cur.provenance if cur else None
        )
        if cur is not None and not merged.changed:
            continue
        if cur is None:
            new = Current(merged.event, merged.provenance, incoming.source, merged.changed)
        elif _replaces_known_values(cur.event, merged.event, merged.changed):  # new version
            history.append(_history_row(cur, valid_to=merged.event.event_time))
            new = Current(merged.event, merged.provenance, incoming.source, merged.changed)
        else:  # figures moved or unknown fields were filled: the same version, in place
            new = Current(
                merged.event,
                merged.provenance,
                cur.changed_by,
                cur.changed_fields,
                cur.version_since or cur.event.event_time,
            )
        state[key] = touched[key] = new
    return Folded([current_row(table, c) for c in touched.values()], history)


def _replaces_known_values(
    old: AssetMetadataEvent, new: AssetMetadataEvent, changed: Iterable[str]
) -> bool:
    """Whether a descriptive field that had a value now has another one. Filling a field no
    source had described (a first description, a new link) adds to the version; only a value
    that is superseded makes the old version history."""
    for name in changed:
        if name in VOLATILE:
            continue
        before, after = getattr(old, name), getattr(new, name)
        if isinstance(before, Mapping):
            if any(key in after and after[key] != value for key, value in before.items()):
                return True
        elif before not in (None, "", (), []):
            return True
    return False


def current_row(table: Table, cur: Current) -> Row:
    """The table row of a merged entity (its event's columns, then the merge columns)."""
    [(_, row)] = metadata_rows(cur.event)
    extra = (
        json.dumps(cur.provenance, separators=(",", ":"), sort_keys=True),
        cur.changed_by or cur.event.source,
        list(cur.changed_fields),
        cur.version_since or cur.event.event_time,
    )
    out = row[: len(table.columns) - len(MERGE_COLUMNS)] + extra
    assert len(out) == len(table.columns)
    return out


def _history_row(cur: Current, valid_to: datetime) -> Row:
    e = cur.event
    since = cur.version_since or e.event_time
    return (
        e.entity_id,
        since,
        max(valid_to, since),
        e.entity,
        e.name,
        e.symbol,
        e.slug,
        e.description,
        e.model_dump_json(exclude_none=True),
        cur.changed_by or e.source,
        list(cur.changed_fields),
    )
