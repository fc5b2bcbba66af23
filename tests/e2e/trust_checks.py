"""What a subscriber trusts after a run, checked on the topics and tables themselves.

Used by the demo test: every record validates against the exported JSON Schema (a third-party
validator), every asset a source described has a current description, history has no
flip-flops, the latest BTC prices of every source agree, and no two assets share a key or row.
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from typing import Any

import asyncpg
from jsonschema import Draft202012Validator

from coinstream.devstack.kafkatools import read_topic
from coinstream.runtime import KafkaSettings
from coinstream.schemas import Topics, json_schemas
from coinstream.schemas.merge import FIELDS
from coinstream.sink_postgres.entities import VOLATILE

_BY_TYPE = {
    "price": "PriceEvent",
    "sentiment": "SentimentEvent",
    "metadata": "AssetMetadataEvent",
    "candle": "CandleEvent",
    "feed_status": "FeedStatusEvent",
    "service_health": "ServiceHealthEvent",
    "alert": "AlertEvent",
}


def _validators() -> dict[str, Draft202012Validator]:
    schemas = json_schemas()
    return {
        t: Draft202012Validator(schemas[name], format_checker=Draft202012Validator.FORMAT_CHECKER)
        for t, name in _BY_TYPE.items()
    }


async def canonical_records(kafka: KafkaSettings, topics: Topics) -> list[tuple[bytes, Any]]:
    """Every record on the canonical topics: (key, decoded JSON)."""
    names = [topics.prices, topics.sentiment, topics.metadata, topics.candles]
    names += [topics.feed_status, topics.alerts]
    records = await read_topic(kafka, names, min_records=10**9, timeout=60, idle_s=3)
    return [(r.key or b"", json.loads(r.value)) for r in records if r.value is not None]


def schema_violations(records: list[tuple[bytes, Any]]) -> list[str]:
    """Each record checked by ``jsonschema`` against the schema of its type."""
    validators = _validators()
    problems = []
    for key, doc in records:
        validator = validators.get(doc.get("type"))
        if validator is None:
            problems.append(f"{key!r}: no schema for type {doc.get('type')!r}")
            continue
        problems += [f"{key!r}: {e.message}" for e in validator.iter_errors(doc)]
    return problems


def shared_keys(records: list[tuple[bytes, Any]]) -> dict[bytes, set[tuple[Any, Any]]]:
    """Price keys carrying more than one (asset id, market): two assets sharing a key."""
    seen: dict[bytes, set[tuple[Any, Any]]] = defaultdict(set)
    for key, doc in records:
        if doc.get("type") == "price" and doc.get("kind") != "consolidated":
            seen[key].add((doc.get("asset_id"), doc.get("market")))
    return {k: v for k, v in seen.items() if len(v) > 1}


def described(records: list[tuple[bytes, Any]]) -> set[str]:
    """Assets some source sent a description for."""
    return {
        doc["entity_id"]
        for _, doc in records
        if doc.get("type") == "metadata" and doc.get("entity") == "asset" and doc.get("description")
    }


async def table_problems(database_url: str, described_assets: set[str]) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        problems = []
        rows = await conn.fetch(
            "SELECT entity_id FROM assets WHERE entity_id = ANY($1::text[])"
            " AND (description IS NULL OR description = '')",
            sorted(described_assets),
        )
        problems += [
            f"{r['entity_id']}: described by a source, no current description" for r in rows
        ]
        # Every version of each asset (superseded ones, then the current one), compared on
        # the descriptive fields: a flip-flop is a return to a version older than the last.
        versions = await conn.fetch(
            "SELECT entity_id, valid_from AS t, data::text AS data FROM metadata_history"
            " WHERE entity = 'asset' UNION ALL"
            " SELECT entity_id, version_since AS t, data::text AS data FROM assets"
            " ORDER BY entity_id, t"
        )
        by_entity: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in versions:
            doc = json.loads(r["data"])
            by_entity[r["entity_id"]].append({f: doc.get(f) for f in FIELDS if f not in VOLATILE})
        for entity, seq in by_entity.items():
            for i, v in enumerate(seq):
                if v in seq[: max(i - 1, 0)]:
                    problems.append(f"{entity}: flip-flop back to an earlier version: {seq}")
                    break
        btc = await conn.fetch(
            "SELECT venue, price FROM latest_prices WHERE base = 'BTC' AND market = 'spot'"
            " AND quote IN ('USD', 'USDT', 'USDC')"
        )
        prices = {r["venue"]: Decimal(r["price"]) for r in btc}
        if len(prices) >= 2 and max(prices.values()) > min(prices.values()) * Decimal("1.01"):
            problems.append(f"latest BTC prices disagree by more than 1%: {prices}")
        if len(prices) < 2:
            problems.append(f"fewer than two sources priced BTC: {prices}")
        return problems
    finally:
        await conn.close()
