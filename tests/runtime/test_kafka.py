"""Kafka adapters against the real broker: lifecycle, round trip, dead letters."""

import pytest

from coinstream.devstack.kafkatools import read_topic
from coinstream.runtime import (
    DeadLetterPublisher,
    KafkaConsumer,
    KafkaProducer,
    KafkaSettings,
    ResourceClosedError,
)
from coinstream.schemas import DeadLetter, Topics

pytestmark = pytest.mark.kafka


async def test_producer_close_is_idempotent_and_final(kafka_settings: KafkaSettings) -> None:
    producer = KafkaProducer(kafka_settings)
    async with producer:
        fut = await producer.send(kafka_settings.topics.prices, b"v", key=b"k")
        assert (await fut).offset >= 0
    await producer.aclose()
    with pytest.raises(ResourceClosedError):
        await producer.send(kafka_settings.topics.prices, b"v")


async def test_consumer_commits_and_resumes(kafka_settings: KafkaSettings, topics: Topics) -> None:
    async with KafkaProducer(kafka_settings) as producer:
        for i in range(10):
            await producer.send(topics.prices, str(i).encode(), key=b"same-key")
    seen: list[bytes] = []
    async with KafkaConsumer(kafka_settings, [topics.prices], "g-resume") as consumer:
        while len(seen) < 5:
            for tp, recs in (await consumer.getmany(timeout_ms=500, max_records=5)).items():
                seen += [r.value for r in recs]
                await consumer.commit({tp: recs[-1].offset + 1})
    assert seen[:5] == [b"0", b"1", b"2", b"3", b"4"]
    rest: list[bytes] = []
    async with KafkaConsumer(kafka_settings, [topics.prices], "g-resume") as consumer:
        while len(seen) + len(rest) < 10:
            for recs in (await consumer.getmany(timeout_ms=500)).values():
                rest += [r.value for r in recs]
    assert seen + rest == [str(i).encode() for i in range(10)]


async def test_dead_letter_carries_reason_and_origin(kafka_settings: KafkaSettings) -> None:
    async with KafkaProducer(kafka_settings) as producer:
        dlq = DeadLetterPublisher(producer, service="test")
        fut = await dlq.publish(
            b"{not json",
            reason="payload is not JSON",
            error=ValueError("x"),
            origin_topic="coinstream.raw.binance.v1",
            origin_partition=1,
            origin_offset=7,
            key=b"binance:BTC-USDT",
        )
        await fut
    [record] = await read_topic(kafka_settings, kafka_settings.topics.dlq)
    letter = DeadLetter.from_headers(record.headers)
    assert record.value == b"{not json"
    assert (letter.reason, letter.error_class, letter.origin_partition, letter.origin_offset) == (
        "payload is not JSON",
        "ValueError",
        1,
        7,
    )
