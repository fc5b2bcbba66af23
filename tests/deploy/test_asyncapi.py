"""The AsyncAPI document: valid AsyncAPI 3.0, complete, in sync with the models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from coinstream.schemas import RAW_SOURCES, Topics, decode_envelope, decode_event
from coinstream.schemas.asyncapi import asyncapi_document, examples, render_asyncapi

from .deploy_helpers import ROOT, SCHEMAS, load_json

COMMITTED = ROOT / "docs" / "asyncapi.yaml"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document()


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = load_json(SCHEMAS / "asyncapi-3.0.0.json")
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(validator: jsonschema.Draft7Validator, doc: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in validator.iter_errors(doc)
    ]


def test_committed_document_is_in_sync_with_the_models() -> None:
    """docs/asyncapi.yaml is exactly what the generator writes now (run `make asyncapi`)."""
    assert COMMITTED.read_text() == render_asyncapi(asyncapi_document()), (
        "docs/asyncapi.yaml is stale: run `make asyncapi` and commit the result"
    )


def test_committed_document_is_valid_asyncapi_3(validator: jsonschema.Draft7Validator) -> None:
    assert _errors(validator, yaml.safe_load(COMMITTED.read_text())) == []


def test_validator_rejects_a_broken_document(
    document: dict[str, Any], validator: jsonschema.Draft7Validator
) -> None:
    """The vendored schema really checks: a wrong operation action is an error."""
    broken = json.loads(json.dumps(document))
    broken["operations"]["publishPrices"]["action"] = "publish"
    assert _errors(validator, broken)


def test_every_topic_is_a_channel(document: dict[str, Any]) -> None:
    topics = Topics()
    addresses = {c["address"]: c for c in document["channels"].values()}
    for spec in topics.specs():
        if ".raw." in spec.name:
            raw = addresses["coinstream.raw.{source}.v1"]
            assert raw["parameters"]["source"]["enum"] == list(RAW_SOURCES)
            continue
        channel = addresses[spec.name]
        kafka = channel["bindings"]["kafka"]
        assert kafka["topic"] == spec.name
        assert kafka["partitions"] == spec.partitions
    metadata = addresses[topics.metadata]["bindings"]["kafka"]
    assert metadata["topicConfiguration"] == {"cleanup.policy": ["compact"]}


def test_feed_status_channel_carries_both_event_types(document: dict[str, Any]) -> None:
    messages = document["channels"]["feedStatus"]["messages"]
    assert sorted(messages) == ["FeedStatusEvent", "ServiceHealthEvent"]


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = _refs(document)
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        _resolve(document, ref)


def test_examples_match_their_schema_and_decode(document: dict[str, Any]) -> None:
    """Each message example validates against its payload schema and decodes with the package."""
    components = document["components"]
    checked = 0
    for name, message in components["messages"].items():
        for example in message.get("examples", []):
            schema = dict(_resolve(document, message["payload"]["$ref"]))
            schema["components"] = {"schemas": components["schemas"]}
            jsonschema.Draft202012Validator(schema).validate(example["payload"])
            raw = json.dumps(example["payload"])
            decoded = decode_envelope(raw) if name == "RawEnvelope" else decode_event(raw)
            assert type(decoded).__name__ == name
            assert decoded == examples()[name]
            checked += 1
    assert checked == len(examples()) == 8


def test_message_keys_are_documented_with_real_examples(document: dict[str, Any]) -> None:
    price = document["components"]["messages"]["PriceEvent"]["bindings"]["kafka"]["key"]
    assert price["examples"] == ["BTC-USDT"]
    assert "symbol" in price["description"]


def test_cli_writes_yaml_and_json(tmp_path: Path) -> None:
    """`python -m coinstream.schemas export-asyncapi` writes YAML or JSON by suffix."""
    for name in ("api.yaml", "api.json"):
        subprocess.run(
            [sys.executable, "-m", "coinstream.schemas", "export-asyncapi", str(tmp_path / name)],
            check=True,
            capture_output=True,
        )
    from_yaml = yaml.safe_load((tmp_path / "api.yaml").read_text())
    from_json = json.loads((tmp_path / "api.json").read_text())
    assert from_yaml == from_json == json.loads(json.dumps(asyncapi_document()))


def test_prefix_changes_every_address() -> None:
    doc = asyncapi_document("acme")
    assert {c["address"].split(".")[0] for c in doc["channels"].values()} == {"acme"}
