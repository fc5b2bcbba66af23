"""Coinstream's public contract: event models, topic names and JSON Schema.

Subscribers install this package to read Coinstream topics::

    from coinstream.schemas import Topics, decode_event
    topics = Topics()              # prefix "coinstream"
    event = decode_event(record.value)
"""

from coinstream.schemas import fastcodec, fastenvelope, fastprice, limits
from coinstream.schemas.codec import decode_envelope, decode_event, describe_error
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
    onchain_market,
    price_key,
)
from coinstream.schemas.ids import deterministic_id
from coinstream.schemas.jsonschema import export_jsonschema, json_schemas
from coinstream.schemas.merge import PRECEDENCE, Merged, merge_metadata
from coinstream.schemas.topics import RAW_SOURCES, REST_SOURCES, WS_SOURCES, Topics, TopicSpec
from coinstream.schemas.types import (
    AssetCode,
    CanonicalSymbol,
    DisplayText,
    ExactDecimal,
    FreeText,
    Identifier,
    NonNegativeDecimal,
    PositiveDecimal,
    SourceName,
    TradeId,
    UtcDatetime,
)

__all__ = [
    "PRECEDENCE",
    "RAW_SOURCES",
    "REST_SOURCES",
    "SCHEMA_VERSION",
    "WS_SOURCES",
    "AlertEvent",
    "AnyEvent",
    "AssetCode",
    "AssetMetadataEvent",
    "CandleEvent",
    "CanonicalSymbol",
    "DeadLetter",
    "DisplayText",
    "Event",
    "ExactDecimal",
    "FeedEvent",
    "FeedStatusEvent",
    "FreeText",
    "Identifier",
    "Merged",
    "NonNegativeDecimal",
    "PositiveDecimal",
    "PriceEvent",
    "RawEnvelope",
    "RequestMeta",
    "SentimentEvent",
    "ServiceHealthEvent",
    "SourceName",
    "TopicSpec",
    "Topics",
    "TradeId",
    "UtcDatetime",
    "decode_envelope",
    "decode_event",
    "describe_error",
    "deterministic_id",
    "export_jsonschema",
    "fastcodec",
    "fastenvelope",
    "fastprice",
    "json_schemas",
    "limits",
    "merge_metadata",
    "onchain_market",
    "price_key",
]
