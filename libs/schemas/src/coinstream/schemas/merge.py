"""One coherent record per entity from several sources' metadata events (pure).

Each source describes part of an asset, exchange, DEX pair or instrument, and thin endpoints
(CoinGecko ``/coins/markets``) say less than rich ones (``/coins/{id}``, CMC ``/info``).
``merge_metadata`` folds an incoming event into the current record field by field:

- a field the incoming event does not carry (``None``, empty) never erases a known value;
- a field is taken from the incoming event when its source ranks higher for that field than
  the source that last set it (``PRECEDENCE``: the source that owns a field wins), or ranks
  the same and the event is not older than the one that set it;
- maps (links, source ids, platforms, attributes) merge key by key by the same rule.

``provenance`` records, per field, the source that set it and the event time, so the rule
holds across batches and restarts (the sink keeps it next to each current row). The result
says which fields changed, so history records one version per real change, with its source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from coinstream.schemas.events import AssetMetadataEvent

CORE = ("coingecko", "coinmarketcap", "cmc-dex")
PRECEDENCE: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "asset": {
        # CoinGecko's /coins/{id} is the richest description; CMC /info next
        "*": CORE,
    },
    "exchange": {"*": ("coingecko", "coinmarketcap")},
    "dex_pair": {"*": ("cmc-dex", "coingecko", "coinmarketcap")},
    # a venue knows its own instruments best; aggregators' listings come after
    "instrument": {"*": ("binance", "coinbase", "kraken", *CORE)},
}
"""entity kind -> field (``*`` for any) -> sources from highest to lowest authority. A source
not listed ranks below every listed one."""

FIELDS = (
    "name", "symbol", "slug", "description", "categories", "source_ids", "platforms", "links",
    "circulating_supply", "total_supply", "max_supply", "country", "year_established",
    "trust_score", "volume_24h", "volume_unit", "network", "dex", "contract_address",
    "base_asset_id", "quote_asset_id", "attributes",
)  # fmt: skip
"""The descriptive fields merged (identity and bookkeeping fields are not)."""
_MAPS = frozenset({"source_ids", "platforms", "links", "attributes"})

Provenance = dict[str, list[Any]]
"""field (or ``field.key`` for maps) -> [source, event time (RFC 3339)]."""


@dataclass
class Merged:
    event: AssetMetadataEvent
    provenance: Provenance = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)


def rank(entity: str, field_name: str, source: str) -> int:
    """Lower is more authoritative."""
    table = PRECEDENCE.get(entity, {})
    order = table.get(field_name) or table.get("*") or ()
    return order.index(source) if source in order else len(order)


def _empty(value: Any) -> bool:
    return value is None or value in ((), {}, [], "")


def _wins(entity: str, name: str, source: str, at: str, held: list[Any] | None) -> bool:
    if held is None:
        return True
    held_source, held_at = str(held[0]), str(held[1])
    mine, theirs = rank(entity, name, source), rank(entity, name, held_source)
    if mine != theirs:
        return mine < theirs
    return at >= held_at  # the same authority: the newer event


def merge_metadata(
    current: AssetMetadataEvent | None,
    incoming: AssetMetadataEvent,
    provenance: Provenance | None = None,
) -> Merged:
    """``incoming`` folded into ``current`` (see the module docstring). Identity and
    bookkeeping (event id, times, revision) come from the event that changed something, or
    stay those of ``current`` when nothing changed."""
    if current is None:
        at = _iso(incoming.event_time)
        prov: Provenance = {}
        for name in FIELDS:
            value = getattr(incoming, name)
            if _empty(value):
                continue
            if name in _MAPS:
                for key in value:
                    prov[f"{name}.{key}"] = [incoming.source, at]
            else:
                prov[name] = [incoming.source, at]
        return Merged(incoming, prov, [n for n in FIELDS if not _empty(getattr(incoming, n))])
    prov = {k: list(v) for k, v in (provenance or {}).items()}
    entity, source, at = incoming.entity, incoming.source, _iso(incoming.event_time)
    updates: dict[str, Any] = {}
    changed: list[str] = []
    for name in FIELDS:
        new = getattr(incoming, name)
        if _empty(new):
            continue
        old = getattr(current, name)
        if name in _MAPS:
            merged = dict(old)
            for key, value in new.items():
                if _empty(value):
                    continue
                slot = f"{name}.{key}"
                if _wins(entity, name, source, at, prov.get(slot)):
                    merged[key] = value
                    prov[slot] = [source, at]
            if merged != old:
                updates[name] = merged
                changed.append(name)
        elif _wins(entity, name, source, at, prov.get(name)):
            prov[name] = [source, at]
            if new != old:
                updates[name] = new
                changed.append(name)
    if not changed:
        return Merged(current, prov, [])
    updates |= {
        "event_id": incoming.event_id,
        "event_time": max(incoming.event_time, current.event_time),
        "received_at": incoming.received_at,
        "source": incoming.source,
        "revision": incoming.revision,
    }
    return Merged(current.model_copy(update=updates), prov, changed)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="microseconds")
