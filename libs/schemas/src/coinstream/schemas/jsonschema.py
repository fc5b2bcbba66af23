"""JSON Schema export for every public event model and the dead-letter record.

The schemas are as strict as the models: decimals are plain-string patterns, times RFC 3339
(``format: date-time`` and a pattern), and objects are closed (``additionalProperties: false``):
a producer writing a field this release does not define fails validation, while readers built
on the models ignore unknown fields (see the versioning rules in docs/subscribers.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from coinstream.schemas.dead_letters import bounded_value_json_schema, headers_json_schema
from coinstream.schemas.envelope import RawEnvelope
from coinstream.schemas.events import (
    AlertEvent,
    AssetMetadataEvent,
    CandleEvent,
    FeedStatusEvent,
    PriceEvent,
    SentimentEvent,
    ServiceHealthEvent,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"

PUBLIC_MODELS: tuple[type[BaseModel], ...] = (
    RawEnvelope,
    PriceEvent,
    SentimentEvent,
    AssetMetadataEvent,
    CandleEvent,
    FeedStatusEvent,
    ServiceHealthEvent,
    AlertEvent,
)


def json_schemas() -> dict[str, dict[str, Any]]:
    """Name -> JSON Schema (serialization mode: what is on the wire): every public model,
    plus ``DeadLetterHeaders`` and ``DeadLetterBoundedValue`` for the dead-letter topic."""
    schemas = {m.__name__: m.model_json_schema(mode="serialization") for m in PUBLIC_MODELS}
    schemas["DeadLetterHeaders"] = headers_json_schema()
    schemas["DeadLetterBoundedValue"] = bounded_value_json_schema()
    for schema in schemas.values():
        schema.setdefault("$schema", DIALECT)
    return schemas


def export_jsonschema(directory: Path) -> list[Path]:
    """Write ``<Model>.schema.json`` for every public model; return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
