"""Both engines on the real broker: every canonical topic, dead letters, candle revisions, and
a restart in the middle of a minute that still yields the right candle."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from coinstream.devstack.kafkatools import read_topic
from coinstream.runtime import KafkaProducer, KafkaSettings
from coinstream.schemas import (
    AssetMetadataEvent,
    CandleEvent,
    DeadLetter,
    SentimentEvent,
    Topics,
    decode_event,
)

from .normalizer_helpers import binance_trade, raw, running, settings_for

pytestmark = pytest.mark.kafka

M = 1_712_508_600_000  # minute start, ms
FNG = '{"name": "Fear and Greed Index", "data": [{"value": "25", "value_classification": "Extreme Fear", "timestamp": "1639958400", "time_until_update": "62507"}], "metadata": {"error": null}}'
MARKETS = '[{"id": "bitcoin", "symbol": "btc", "name": "Bitcoin", "current_price": 70187, "market_cap": 1381651251183, "total_volume": 20154184933, "price_change_percentage_24h": 3.12502, "circulating_supply": 19675987, "total_supply": 21000000, "max_supply": 21000000, "last_updated": "2024-04-07T16:49:31.736Z"}]'
KRAKEN = '{"channel": "trade", "type": "update", "data": [{"symbol": "BTC/USD", "side": "sell", "price": 70100.5, "qty": 0.25, "ord_type": "market", "trade_id": 77, "timestamp": "2024-04-07T16:50:02.000001Z"}]}'


async def send(
    settings: KafkaSettings, topics: Topics, records: list[tuple[str, bytes | None, bytes]]
) -> None:
    async with KafkaProducer(settings) as producer:
        for source, key, value in records:
            await producer.send(topics.raw(source), value, key=key)


def trade(i: int, offset_s: float, price: str, qty: str = "1") -> tuple[str, bytes, bytes]:
    payload = binance_trade("BTCUSDT", i, price, qty, M + int(offset_s * 1000))
    return ("binance", b"binance:BTC-USDT", raw("binance", "btcusdt@trade", payload))


def decoded(records: list[Any]) -> list[Any]:
    return [decode_event(r.value) for r in records]


@pytest.mark.parametrize("engine", ["aiokafka", "faust"])
async def test_engine_end_to_end_with_restart_mid_minute(
    kafka_settings: KafkaSettings, topics: Topics, engine: str
) -> None:
    """Records from several sources reach prices/sentiment/metadata/candles/DLQ; a restart in the
    middle of a minute rebuilds the open candle, and every re-emitted (id, revision) is identical."""
    settings = settings_for(kafka_settings, engine=engine, dedup_window=1, candles={"grace_s": 10})
    # phase 1: the first half of minute M, plus other sources and a bad record
    await send(kafka_settings, topics, [
        trade(1, 1, "100", "2"),
        trade(2, 30, "110", "1"),
        ("kraken", b"kraken:BTC-USD", raw("kraken", "trade", KRAKEN)),
        ("feargreed", b"feargreed:/fng/", raw("feargreed", "/fng/", FNG)),
        ("coingecko", b"coingecko:/coins/markets", raw("coingecko", "/coins/markets", MARKETS, params={"vs_currency": "usd"})),
        ("binance", b"binance:BTC-USDT", raw("binance", "btcusdt@trade", '{"stream":"btcusdt@trade","data":{"s":"BTCUSDT"}}')),
    ])  # fmt: skip
    async with running(settings):
        prices = await read_topic(kafka_settings, topics.prices, min_records=4, timeout=30)
        letters = await read_topic(kafka_settings, topics.dlq, min_records=1, timeout=20)
        sentiment = await read_topic(kafka_settings, topics.sentiment, min_records=1, timeout=20)
        metadata = await read_topic(kafka_settings, topics.metadata, min_records=3, timeout=20)
    assert {(e.kind, e.symbol) for e in decoded(prices)} >= {
        ("trade", "BTC-USDT"),
        ("trade", "BTC-USD"),
        ("aggregate", "BTC-USD"),
    }
    [letter] = [DeadLetter.from_headers(r.headers) for r in letters]
    assert "no 't' field" in letter.reason and letter.origin_topic == topics.raw("binance")
    [fng] = decoded(sentiment)
    assert isinstance(fng, SentimentEvent) and (fng.value, fng.classification) == (
        Decimal(25),
        "Extreme Fear",
    )
    entities = {r.key: e for r, e in zip(metadata, decoded(metadata), strict=True)}
    meta = entities[b"asset:bitcoin"]
    assert isinstance(meta, AssetMetadataEvent) and meta.entity == "asset"
    # each venue instrument is announced once (the ones seen so far)
    assert {k for k in entities if k.startswith(b"instrument:")} == {
        b"instrument:binance:BTCUSDT",
        b"instrument:kraken:BTC/USD",
    }
    assert await read_topic(kafka_settings, topics.candles, timeout=1) == []  # minute M still open

    # phase 2 (after a restart mid-minute): close M, a late trade within grace, then final
    await send(kafka_settings, topics, [
        trade(3, 61, "105"),    # watermark passes M's close -> revision 0
        trade(4, 50, "120"),    # late, inside grace -> revision 1 (amended)
        trade(5, 75, "106"),    # watermark passes close + grace -> revision 2, final
        trade(6, 20, "999"),    # later than the grace: revises the final candle -> revision 3
    ])  # fmt: skip

    def has_final(recs: list[Any]) -> bool:
        return any(json.loads(r.value).get("revision") == 3 for r in recs)

    async with running(settings):
        candle_records = await read_topic(
            kafka_settings, topics.candles, timeout=30, until=has_final
        )
    candles = [c for c in decoded(candle_records) if isinstance(c, CandleEvent)]
    assert {r.key for r in candle_records} == {b"binance:BTC-USDT"}
    by_revision: dict[int, CandleEvent] = {}
    for c in candles:  # re-emitted duplicates must be identical
        assert by_revision.setdefault(c.revision, c) == c
    assert sorted(by_revision) == [0, 1, 2, 3]
    assert len({c.event_id for c in candles}) == 1
    rev0, rev1, final = by_revision[0], by_revision[1], by_revision[2]
    assert (rev0.trade_count, rev0.open, rev0.close, rev0.volume, rev0.final) == (
        2,
        Decimal(100),
        Decimal(110),
        Decimal(3),
        False,
    )
    assert (rev1.trade_count, rev1.high, rev1.close) == (3, Decimal(120), Decimal(120))
    assert final.final and final.trade_count == 3
    assert (final.open, final.high, final.low, final.close) == (
        Decimal(100),
        Decimal(120),
        Decimal(100),
        Decimal(120),
    )
    assert final.volume == Decimal(4) and final.quote_volume == Decimal(430)
    assert final.vwap == Decimal("107.5")
    revised = by_revision[3]  # the trade later than the grace, within revise_within_s
    assert revised.final and (revised.trade_count, revised.high, revised.close) == (
        4,
        Decimal(999),
        Decimal(120),
    )
    assert revised.volume == Decimal(5)
