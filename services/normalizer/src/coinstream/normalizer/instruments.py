"""Instrument entities: each venue instrument the normalizer resolves, announced once per
process on ``coinstream.metadata.v1`` (pure).

``entity_id`` is ``instrument:<venue>:<native symbol>``; the event id is a digest of the
content, so a restart or a second replica announces the same instrument with the same id and
the compacted topic and the sink's merge absorb it.
"""

from __future__ import annotations

from datetime import datetime

from coinstream.normalizer.identity import Instrument, Registry
from coinstream.normalizer.parsers.common import content_id
from coinstream.schemas import AssetMetadataEvent


def instrument_event(
    venue: str, inst: Instrument, registry: Registry, now: datetime
) -> AssetMetadataEvent:
    entity_id = f"instrument:{venue}:{inst.native}"
    quote_asset = registry.asset_for_code(inst.quote)
    attributes: dict[str, str] = {
        "venue": venue,
        "native_symbol": inst.native,
        "base": inst.base,
        "quote": inst.quote,
    }
    content = {
        "symbol": inst.symbol,
        "base_asset_id": inst.asset_id,
        "quote_asset_id": quote_asset,
        **attributes,
    }
    return AssetMetadataEvent(
        event_id=content_id("metadata", venue, entity_id, content=content),
        event_time=now,
        received_at=now,
        source=venue,
        entity="instrument",
        entity_id=entity_id,
        name=f"{inst.base}/{inst.quote} on {venue}",
        symbol=inst.symbol,
        source_ids={venue: inst.native},
        base_asset_id=inst.asset_id,
        quote_asset_id=quote_asset,
        attributes=attributes,
    )
