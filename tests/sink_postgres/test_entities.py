"""Entity rows folded field by field; history only for real changes (pure)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

from coinstream.schemas import AssetMetadataEvent
from coinstream.sink_postgres.entities import Current, current_from_db, fold
from coinstream.sink_postgres.rows import metadata_rows
from coinstream.sink_postgres.tables import ASSETS, EXCHANGES, Row

from . import events

RICH = events.asset(0, name="Bitcoin", description="Peer-to-peer cash")


def thin(minute: int, source: str = "coingecko", **fields: Any) -> AssetMetadataEvent:
    t = events.T0 + timedelta(minutes=minute)
    return AssetMetadataEvent(
        event_id=f"{source}-{minute}",
        event_time=t,
        received_at=t,
        source=source,
        entity="asset",
        entity_id="asset:bitcoin",
        **fields,
    )


def row(e: AssetMetadataEvent) -> Row:
    [(_, r)] = metadata_rows(e)
    return r


def stored(rows: list[Row]) -> dict[str, Current]:
    """What the store reads back: the columns of the written rows."""
    out = {}
    for r in rows:
        rec = dict(zip(ASSETS.columns, r, strict=True))
        out[rec["entity_id"]] = current_from_db(rec)
    return out


def test_first_event_creates_the_row_without_history() -> None:
    folded = fold(ASSETS, {}, [row(RICH)])
    assert folded.history == []
    [current] = folded.current
    rec = dict(zip(ASSETS.columns, current, strict=True))
    assert rec["description"] == "Peer-to-peer cash" and rec["changed_by"] == "coingecko"
    assert json.loads(rec["field_sources"])["description"][0] == "coingecko"


def test_thin_and_lower_ranked_events_keep_rich_fields_and_make_no_version() -> None:
    first = fold(ASSETS, {}, [row(RICH)]).current
    later = [
        row(thin(5, name="Bitcoin", symbol="BTC", circulating_supply=Decimal("19800000"))),
        row(thin(6, "coinmarketcap", name="Bitcoin (BTC)", description="From CMC", slug="btc")),
    ]
    folded = fold(ASSETS, stored(first), later)
    [current] = folded.current
    rec = dict(zip(ASSETS.columns, current, strict=True))
    assert (rec["name"], rec["description"], rec["slug"]) == (
        "Bitcoin",
        "Peer-to-peer cash",
        "bitcoin",
    )
    assert rec["circulating_supply"] == Decimal("19800000")  # figures update in place
    assert folded.history == []  # no descriptive field changed
    assert rec["version_since"] == RICH.event_time and rec["changed_by"] == "coingecko"


def test_a_real_change_supersedes_the_version_with_who_made_it() -> None:
    first = fold(ASSETS, {}, [row(RICH)]).current
    renamed = thin(30, name="Bitcoin Core")
    folded = fold(ASSETS, stored(first), [row(renamed)])
    [history] = folded.history
    assert history[:4] == ("asset:bitcoin", RICH.event_time, renamed.event_time, "asset")
    assert history[-2] == "coingecko"  # who made the superseded version
    rec = dict(zip(ASSETS.columns, folded.current[0], strict=True))
    assert (rec["name"], rec["changed_fields"], rec["version_since"]) == (
        "Bitcoin Core",
        ["name"],
        renamed.event_time,
    )


def test_filling_unknown_fields_adds_to_the_version() -> None:
    """A thin event first, then the rich one: nothing known is replaced, so no history."""
    first = fold(ASSETS, {}, [row(thin(0, name="Bitcoin", symbol="BTC"))]).current
    folded = fold(
        ASSETS,
        stored(first),
        [row(RICH.model_copy(update={"event_time": events.T0 + timedelta(minutes=1)}))],
    )
    assert folded.history == []
    rec = dict(zip(ASSETS.columns, folded.current[0], strict=True))
    assert rec["description"] == "Peer-to-peer cash" and rec["version_since"] == events.T0


def test_replays_write_nothing() -> None:
    first = fold(ASSETS, {}, [row(RICH)]).current
    folded = fold(ASSETS, stored(first), [row(RICH), row(RICH)])
    assert (folded.current, folded.history) == ([], [])


def test_exchange_volume_keeps_its_unit() -> None:
    e = events.exchange().model_copy(update={"volume_24h": Decimal(5), "volume_unit": "BTC"})
    [current] = fold(EXCHANGES, {}, [row(e)]).current
    rec = dict(zip(EXCHANGES.columns, current, strict=True))
    assert (rec["volume_24h"], rec["volume_unit"]) == (Decimal(5), "BTC")
