"""Per-field metadata merging: the owner of a field wins, nothing known is erased, and only
real changes count (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from coinstream.schemas import AssetMetadataEvent, merge_metadata
from coinstream.schemas.merge import Provenance, rank

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def asset(source: str, minutes: int = 0, **fields: Any) -> AssetMetadataEvent:
    t = T0 + timedelta(minutes=minutes)
    return AssetMetadataEvent(
        event_id=f"{source}-{minutes}-{'.'.join(sorted(fields))}",
        event_time=t,
        received_at=t,
        source=source,
        entity="asset",
        entity_id="asset:bitcoin",
        **fields,
    )


RICH = asset(
    "coingecko",
    0,
    name="Bitcoin",
    symbol="BTC",
    slug="bitcoin",
    description="Peer-to-peer electronic cash",
    links={"homepage": ("https://bitcoin.org",), "github": ("https://github.com/bitcoin",)},
    categories=("Layer 1",),
)


def fold(events: list[AssetMetadataEvent]) -> tuple[AssetMetadataEvent, list[list[str]]]:
    """Fold events in order, the provenance surviving a JSON round trip like the sink's."""
    current: AssetMetadataEvent | None = None
    prov: Provenance = {}
    changes: list[list[str]] = []
    for event in events:
        merged = merge_metadata(current, event, prov)
        current, prov = merged.event, json.loads(json.dumps(merged.provenance))
        changes.append(merged.changed)
    assert current is not None
    return current, changes


def test_a_thin_event_never_blanks_rich_fields() -> None:
    thin = asset("coingecko", 5, name="Bitcoin", symbol="BTC", circulating_supply=Decimal(19))
    current, changes = fold([RICH, thin])
    assert current.description == "Peer-to-peer electronic cash"
    assert current.slug == "bitcoin" and current.links == RICH.links
    assert current.circulating_supply == Decimal(19)
    assert changes[1] == ["circulating_supply"]


def test_the_owner_of_a_field_wins_whatever_the_order() -> None:
    """CoinGecko owns asset names; CMC's differing name neither replaces it nor flip-flops."""
    events = [
        asset("coingecko", 0, name="Bitcoin"),
        asset("coinmarketcap", 1, name="Bitcoin (BTC)", description="From CMC"),
        asset("coingecko", 2, name="Bitcoin"),
        asset("coinmarketcap", 3, name="Bitcoin (BTC)"),
    ]
    current, changes = fold(events)
    assert current.name == "Bitcoin"
    assert current.description == "From CMC"  # CoinGecko never described it: CMC fills in
    assert changes == [["name"], ["description"], [], []]
    reverse, _ = fold(list(reversed(events)))
    assert reverse.name == "Bitcoin"


@pytest.mark.parametrize(
    ("later_minutes", "expected", "changed"),
    [(5, "Bitcoin Core", ["name"]), (-5, "Bitcoin", [])],
    ids=["newer-replaces", "older-is-ignored"],
)
def test_one_source_newer_wins(later_minutes: int, expected: str, changed: list[str]) -> None:
    current, changes = fold([RICH, asset("coingecko", later_minutes, name=expected)])
    assert current.name == expected and changes[1] == changed


def test_maps_merge_key_by_key() -> None:
    more = asset("coinmarketcap", 3, links={"explorer": ("https://mempool.space",)})
    current, changes = fold([RICH, more])
    assert set(current.links) == {"homepage", "github", "explorer"}
    assert changes[1] == ["links"]


def test_a_replay_changes_nothing() -> None:
    current, changes = fold([RICH, RICH, RICH])
    assert changes[1:] == [[], []]
    assert current == RICH


def test_a_real_rename_is_one_change_with_its_source() -> None:
    renamed = asset("coingecko", 10, name="Bitcoin Classic")
    merged = merge_metadata(RICH, renamed, merge_metadata(None, RICH).provenance)
    assert merged.changed == ["name"]
    assert merged.event.source == "coingecko" and merged.event.event_id == renamed.event_id
    assert merged.provenance["name"][0] == "coingecko"


def test_unlisted_sources_rank_below_listed_ones() -> None:
    assert rank("asset", "name", "coingecko") < rank("asset", "name", "coinmarketcap")
    assert rank("asset", "name", "coinmarketcap") < rank("asset", "name", "somebody")
    assert rank("instrument", "name", "binance") < rank("instrument", "name", "coingecko")
