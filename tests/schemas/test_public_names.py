"""The public contract's names are pinned: removing or renaming one is a breaking change."""

import coinstream.schemas as schemas
from coinstream.schemas import Topics

PUBLIC = [
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
    "NonNegativeDecimal",
    "PositiveDecimal",
    "PRECEDENCE",
    "Merged",
    "merge_metadata",
    "price_key",
    "onchain_market",
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
]


def test_exported_members_are_pinned() -> None:
    assert sorted(schemas.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert hasattr(schemas, name), name


def test_topic_names_are_pinned() -> None:
    t = Topics()
    assert [t.raw(s) for s in schemas.RAW_SOURCES] == [
        "coinstream.raw.coingecko.v1",
        "coinstream.raw.coinmarketcap.v1",
        "coinstream.raw.cmc-dex.v1",
        "coinstream.raw.feargreed.v1",
        "coinstream.raw.binance.v1",
        "coinstream.raw.coinbase.v1",
        "coinstream.raw.kraken.v1",
        "coinstream.raw.coingecko-ws.v1",
        "coinstream.raw.coinmarketcap-ws.v1",
    ]
    assert t.canonical() == [
        "coinstream.prices.v1",
        "coinstream.sentiment.v1",
        "coinstream.metadata.v1",
        "coinstream.candles.v1",
        "coinstream.feed-status.v1",
        "coinstream.alerts.v1",
    ]
    assert t.dlq == "coinstream.dlq.v1"


def test_topic_prefix_is_configurable() -> None:
    t = Topics("acme")
    assert t.prices == "acme.prices.v1"
    assert t.raw("binance") == "acme.raw.binance.v1"


def test_metadata_topic_is_compacted() -> None:
    specs = {s.name: s for s in Topics().specs()}
    assert specs["coinstream.metadata.v1"].configs == {"cleanup.policy": "compact"}
