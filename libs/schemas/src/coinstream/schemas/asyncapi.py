"""AsyncAPI 3.0 description of every Coinstream topic, generated from the models.

``python -m coinstream.schemas export-asyncapi docs/asyncapi.yaml`` writes it; a test keeps the
committed copy in sync. Channels, keys, partitions and topic configuration come from
:class:`~coinstream.schemas.topics.Topics`, message schemas from the pydantic models, and every
example is a real model instance, so the document cannot drift from the code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from coinstream.schemas import dead_letters
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
from coinstream.schemas.ids import deterministic_id
from coinstream.schemas.jsonschema import PUBLIC_MODELS
from coinstream.schemas.topics import RAW_SOURCES, Topics, TopicSpec

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
SCHEMA_REF = "#/components/schemas/{model}"

_DESCRIPTION = """\
Every topic Coinstream publishes, generated from the `coinstream-schemas` package
(`python -m coinstream.schemas export-asyncapi FILE`). Install that package to decode
records: `coinstream.schemas.decode_event(record.value)`.

- **Encoding:** UTF-8 JSON. Prices, sizes and other decimals are strings (`"67012.35"`), never
  JSON numbers; times are UTC, `YYYY-MM-DDTHH:MM:SS.ffffffZ`. Fields whose value is null are
  omitted.
- **Keys:** each channel's Kafka message binding names the record key. All records with one
  key go to one partition, so they are read in the order they were written.
- **Delivery:** at least once. A redelivered or replayed event has the same `event_id`;
  an amended one (a candle updated by a late trade) has the same `event_id` and a higher
  `revision`. Keep the highest revision per `event_id`.
- **Versioning:** the topic name ends in the schema version (`.v1`). Within a version changes
  are additive (new optional fields, new `kind`/`status` values, new topics); the models ignore
  fields they do not know, and an older package rejects a new enumerated value, so skip records
  that do not decode and upgrade. A breaking change creates a `.v2` topic that runs beside `.v1`
  for a migration period.
- **Prefix:** topic names start with `coinstream`; a deployment can set another prefix
  (`KAFKA_TOPIC_PREFIX`).
"""

_EXAMPLE_TIME = datetime(2026, 1, 5, 14, 30, 0, 125000, tzinfo=UTC)
_RECEIVED = datetime(2026, 1, 5, 14, 30, 0, 131250, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Channel:
    """One AsyncAPI channel: a topic (or a family of topics) and what it carries."""

    id: str
    title: str
    description: str
    spec: TopicSpec
    models: tuple[type[BaseModel], ...]
    address: str | None = None  # defaults to spec.name


def _channels(topics: Topics) -> list[_Channel]:
    specs = {s.name: s for s in topics.specs()}
    raw_address = f"{topics.prefix}.raw.{{source}}.v1"
    return [
        _Channel(
            "raw",
            "Raw source payloads",
            "Verbatim payloads from one source (one topic per source), for the normalizer, "
            "replays and audits. Key: `venue:SYMBOL` for WebSocket frames, `source:endpoint` "
            "for REST responses.",
            specs[topics.raw(RAW_SOURCES[0])],
            (RawEnvelope,),
            address=raw_address,
        ),
        _Channel(
            "prices",
            "Prices",
            "Trades, quotes, tickers, aggregator and consolidated prices. Keyed by canonical "
            "symbol: every event of one instrument is in one partition, in order.",
            specs[topics.prices],
            (PriceEvent,),
        ),
        _Channel(
            "sentiment",
            "Sentiment",
            "Sentiment and activity figures reported by the sources (never synthesised).",
            specs[topics.sentiment],
            (SentimentEvent,),
        ),
        _Channel(
            "metadata",
            "Metadata",
            "Descriptive data about assets, exchanges, DEX pairs and instruments. Compacted: "
            "the latest record per key is kept, so reading from the beginning gives the "
            "current state of every entity.",
            specs[topics.metadata],
            (AssetMetadataEvent,),
        ),
        _Channel(
            "candles",
            "Candles",
            "Event-time OHLCV candles built from trades. A candle is published when it opens "
            "and again as it changes (same `event_id`, higher `revision`); `final` is true "
            "once no late trade can change it.",
            specs[topics.candles],
            (CandleEvent,),
        ),
        _Channel(
            "feedStatus",
            "Feed status and service health",
            "Feed health (disconnects, gaps, stale streams, rate limits) and every service's "
            "periodic health report, told apart by `type`.",
            specs[topics.feed_status],
            (FeedStatusEvent, ServiceHealthEvent),
        ),
        _Channel(
            "alerts",
            "Alerts",
            "Alert state changes: pending, firing, resolved, notified, silenced.",
            specs[topics.alerts],
            (AlertEvent,),
        ),
        _Channel(
            "deadLetters",
            "Dead letters",
            "Records a service could not process, byte for byte, with headers naming the "
            "reason and the original topic, partition and offset.",
            specs[topics.dlq],
            (),
        ),
    ]


def examples() -> dict[str, BaseModel]:
    """One realistic, fixed example instance per public model (used in the document)."""
    trade_id = "4186512741"
    common = {"event_time": _EXAMPLE_TIME, "received_at": _RECEIVED}
    return {
        "RawEnvelope": RawEnvelope(
            envelope_id="0b7c2f1e-4f4a-4c55-9f8e-6a1d2b3c4d5e",
            source="binance",
            channel="btcusdt@trade",
            received_at=_RECEIVED,
            payload=(
                '{"stream":"btcusdt@trade","data":{"e":"trade","E":1767623400126,'
                '"s":"BTCUSDT","t":4186512741,"p":"94012.35000000","q":"0.01250000",'
                '"T":1767623400125,"m":false,"M":true}}'
            ),
            connection_id="binance-1",
        ),
        "PriceEvent": PriceEvent(
            event_id=deterministic_id("trade", "binance", "BTC-USDT", trade_id),
            source="binance",
            kind="trade",
            symbol="BTC-USDT",
            base="BTC",
            quote="USDT",
            asset_id="bitcoin",
            native_symbol="BTCUSDT",
            price=Decimal("94012.35"),
            size=Decimal("0.0125"),
            side="buy",
            trade_id=trade_id,
            **common,
        ),
        "SentimentEvent": SentimentEvent(
            event_id=deterministic_id("sentiment", "feargreed", "market", "fear_greed", "day"),
            source="feargreed",
            subject="market",
            metric="fear_greed",
            value=Decimal("27"),
            classification="Fear",
            **common,
        ),
        "AssetMetadataEvent": AssetMetadataEvent(
            event_id=deterministic_id("metadata", "coingecko", "asset:bitcoin", "2026-01-05"),
            source="coingecko",
            entity="asset",
            entity_id="asset:bitcoin",
            name="Bitcoin",
            symbol="BTC",
            slug="bitcoin",
            categories=("Layer 1 (L1)",),
            source_ids={"coingecko": "bitcoin", "coinmarketcap": "1"},
            circulating_supply=Decimal("19790000"),
            max_supply=Decimal("21000000"),
            **common,
        ),
        "CandleEvent": CandleEvent(
            event_id=deterministic_id("candle", "binance", "BTC-USDT", "1m", "2026-01-05T14:30"),
            event_time=datetime(2026, 1, 5, 14, 30, tzinfo=UTC),
            received_at=_RECEIVED,
            source="binance",
            revision=3,
            venue="binance",
            symbol="BTC-USDT",
            open_time=datetime(2026, 1, 5, 14, 30, tzinfo=UTC),
            close_time=datetime(2026, 1, 5, 14, 31, tzinfo=UTC),
            open=Decimal("94000.00"),
            high=Decimal("94020.10"),
            low=Decimal("93991.50"),
            close=Decimal("94012.35"),
            volume=Decimal("1.2500"),
            quote_volume=Decimal("117510.4375"),
            vwap=Decimal("94008.35"),
            trade_count=4,
        ),
        "FeedStatusEvent": FeedStatusEvent(
            event_id=deterministic_id("feed", "kraken", "BTC-USD", "gap", "2026-01-05T14:29:51"),
            source="kraken",
            status="gap",
            symbol="BTC-USD",
            channel="trade",
            window_start=datetime(2026, 1, 5, 14, 29, 51, tzinfo=UTC),
            window_end=_EXAMPLE_TIME,
            cause="connection lost; trades in the window may be missing",
            **common,
        ),
        "ServiceHealthEvent": ServiceHealthEvent(
            event_id=deterministic_id("health", "normalizer", "normalizer-7d9f-1", 42),
            source="normalizer",
            service="normalizer",
            instance="normalizer-7d9f-1",
            status="ready",
            checks={"kafka": "consuming 10 partitions"},
            counters={"records_in": 120345, "dead_letters": 2},
            **common,
        ),
        "AlertEvent": AlertEvent(
            event_id=deterministic_id("alert", "btc-drop-5pct", "firing", "2026-01-05T14:30"),
            source="alerts",
            fingerprint="btc-drop-5pct:symbol=BTC-USDT",
            rule_id="btc-drop-5pct",
            rule_type="price_change",
            status="firing",
            severity="critical",
            subject="BTC-USDT",
            summary="BTC-USDT fell 5.2% in 15 minutes (94012.35)",
            labels={"symbol": "BTC-USDT"},
            value=Decimal("-5.2"),
            threshold=Decimal("-5"),
            starts_at=_EXAMPLE_TIME,
            receivers=("slack-trading",),
            **common,
        ),
    }


def _first_line(model: type[BaseModel]) -> str:
    return (model.__doc__ or model.__name__).strip().splitlines()[0]


def _message(model: type[BaseModel], key_description: str, example: BaseModel) -> dict[str, Any]:
    name = model.__name__
    key = getattr(example, "key", None)
    key_schema: dict[str, Any] = {"type": "string", "description": key_description}
    if isinstance(key, bytes):
        key_schema["examples"] = [key.decode()]
    return {
        "name": name,
        "title": name,
        "summary": _first_line(model),
        "contentType": "application/json",
        "payload": {"$ref": SCHEMA_REF.format(model=name)},
        "bindings": {"kafka": {"key": key_schema, "bindingVersion": KAFKA_BINDING_VERSION}},
        "examples": [
            {
                "name": f"{name}-example",
                "summary": f"A {name} as it appears on the topic",
                "payload": json.loads(example.model_dump_json(exclude_none=True)),
            }
        ],
    }


def _dead_letter_message(key_description: str) -> dict[str, Any]:
    headers = {
        dead_letters.HEADER_REASON: "Why the record failed, what was wrong",
        dead_letters.HEADER_ERROR_CLASS: "Exception class name",
        dead_letters.HEADER_ORIGIN_TOPIC: "Topic the record came from (or was bound for)",
        dead_letters.HEADER_ORIGIN_PARTITION: "Partition of the original record, -1 if none",
        dead_letters.HEADER_ORIGIN_OFFSET: "Offset of the original record, -1 if none",
        dead_letters.HEADER_SERVICE: "Service that dead-lettered it",
        dead_letters.HEADER_FAILED_AT: "When it failed, ISO 8601 UTC",
    }
    return {
        "name": "DeadLetter",
        "title": "DeadLetter",
        "summary": "The original record value, unchanged, with dead-letter headers",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "required": [
                dead_letters.HEADER_REASON,
                dead_letters.HEADER_ERROR_CLASS,
                dead_letters.HEADER_ORIGIN_TOPIC,
            ],
            "properties": {
                name: {"type": "string", "description": text} for name, text in headers.items()
            },
        },
        "payload": {"description": "The original record value, byte for byte"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": key_description},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _channel_bindings(channel: _Channel, parameterised: bool) -> dict[str, Any]:
    kafka: dict[str, Any] = {"partitions": channel.spec.partitions}
    if not parameterised:
        kafka["topic"] = channel.spec.name
    policy = channel.spec.configs.get("cleanup.policy")
    if policy:
        kafka["topicConfiguration"] = {"cleanup.policy": policy.split(",")}
    kafka["bindingVersion"] = KAFKA_BINDING_VERSION
    return {"kafka": kafka}


def _package_version() -> str:
    try:
        return version("coinstream-schemas")
    except PackageNotFoundError:  # running from a source tree without installing
        return "0.0.0"


def asyncapi_document(prefix: str = "coinstream") -> dict[str, Any]:
    """The AsyncAPI 3.0 document for every topic under ``prefix``, as plain data."""
    topics = Topics(prefix)
    _, top = models_json_schema(
        [(m, "serialization") for m in PUBLIC_MODELS], ref_template=SCHEMA_REF
    )
    example_of = examples()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for channel in _channels(topics):
        parameterised = channel.address is not None
        refs: dict[str, Any] = {}
        if channel.models:
            for model in channel.models:
                name = model.__name__
                messages[name] = _message(model, channel.spec.key, example_of[name])
                refs[name] = {"$ref": f"#/components/messages/{name}"}
        else:
            messages["DeadLetter"] = _dead_letter_message(channel.spec.key)
            refs["DeadLetter"] = {"$ref": "#/components/messages/DeadLetter"}
        body: dict[str, Any] = {
            "address": channel.address or channel.spec.name,
            "title": channel.title,
            "description": channel.description
            if "Key:" in channel.description
            else f"{channel.description} Key: {channel.spec.key}.",
            "messages": refs,
        }
        if parameterised:
            body["parameters"] = {
                "source": {
                    "description": "Source name; plugins may add sources",
                    "enum": list(RAW_SOURCES),
                    "examples": ["binance", "coingecko"],
                }
            }
        body["bindings"] = _channel_bindings(channel, parameterised)
        channels[channel.id] = body
        operation_id = "publish" + channel.id[0].upper() + channel.id[1:]
        operations[operation_id] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel.id}"},
            "title": f"Coinstream publishes {channel.title.lower()}",
            "messages": [{"$ref": f"#/channels/{channel.id}/messages/{n}"} for n in refs],
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:coinstream:topics",
        "info": {
            "title": "Coinstream topics",
            "version": _package_version(),
            "description": _DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "The Apache Kafka broker of `deploy/compose.yaml`",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": top["$defs"], "messages": messages},
    }


def render_asyncapi(document: dict[str, Any], fmt: str = "yaml") -> str:
    """Serialize deterministically as YAML (needs PyYAML: ``coinstream-schemas[yaml]``) or JSON."""
    if fmt == "json":
        return json.dumps(document, indent=2) + "\n"
    try:
        import yaml
    except ImportError as exc:  # optional dependency
        raise RuntimeError(
            "YAML output needs PyYAML: install coinstream-schemas[yaml], or write a .json file"
        ) from exc

    class _Dumper(yaml.SafeDumper):
        """Multi-line text as literal blocks, so the descriptions read as written."""

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    header = "# Generated by `python -m coinstream.schemas export-asyncapi`; do not edit.\n"
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return header + body


def export_asyncapi(path: Path, prefix: str = "coinstream") -> Path:
    """Write the document to ``path``: JSON for ``*.json``, YAML otherwise."""
    fmt = "json" if path.suffix == ".json" else "yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_asyncapi(asyncapi_document(prefix), fmt))
    return path


__all__ = ["asyncapi_document", "examples", "export_asyncapi", "render_asyncapi"]
