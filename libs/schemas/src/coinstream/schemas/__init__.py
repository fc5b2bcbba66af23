"""Coinstream's public contract: event models, topic names and JSON Schema.

Subscribers install this package to read Coinstream topics::

    from coinstream.schemas import Topics, decode_event
    topics = Topics()              # prefix "coinstream"
    event = decode_event(record.value)
"""

from coinstream.schemas.codec import decode_envelope, decode_event
from coinstream.schemas.dead_letters import DeadLetter
from coinstream.schemas.envelope import RawEnvelope, RequestMeta
from coinstream.schemas.events import (
    SCHEMA_VERSION,
    AlertEvent,
    AnyEvent,
    AssetMetadataEvent,
    CandleEvent,
    Event,
    FeedEvent,
    FeedStatusEvent,
    PriceEvent,
    SentimentEvent,
    ServiceHealthEvent,
)
from coinstream.schemas.ids import deterministic_id
from coinstream.schemas.jsonschema import export_jsonschema, json_schemas
from coinstream.schemas.topics import RAW_SOURCES, REST_SOURCES, WS_SOURCES, Topics, TopicSpec
from coinstream.schemas.types import ExactDecimal, UtcDatetime

__all__ = [
    "RAW_SOURCES",
    "REST_SOURCES",
    "SCHEMA_VERSION",
    "WS_SOURCES",
    "AlertEvent",
    "AnyEvent",
    "AssetMetadataEvent",
    "CandleEvent",
    "DeadLetter",
    "Event",
    "ExactDecimal",
    "FeedEvent",
    "FeedStatusEvent",
    "PriceEvent",
    "RawEnvelope",
    "RequestMeta",
    "SentimentEvent",
    "ServiceHealthEvent",
    "TopicSpec",
    "Topics",
    "UtcDatetime",
    "decode_envelope",
    "decode_event",
    "deterministic_id",
    "export_jsonschema",
    "json_schemas",
]
