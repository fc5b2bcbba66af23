"""JSON Schema export for every public event model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

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
    """Model name -> JSON Schema (serialization mode: what is on the wire)."""
    return {m.__name__: m.model_json_schema(mode="serialization") for m in PUBLIC_MODELS}


def export_jsonschema(directory: Path) -> list[Path]:
    """Write ``<Model>.schema.json`` for every public model; return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
