"""Kafka adapters against the real broker: lifecycle, round trip, dead letters, topics."""

import asyncio
import uuid

import pytest
from aiokafka.protocol.admin import CreateTopicsResponse_v3

from coinstream.devstack.broker import TansuBroker
from coinstream.devstack.kafkatools import read_topic
from coinstream.runtime import (
    DeadLetterPublisher,
    KafkaConsumer,
    KafkaProducer,
    KafkaSettings,
    ResourceClosedError,
    TopicCreationError,
    ensure_topics,
)
from coinstream.runtime.kafka import refused_topics
from coinstream.schemas import DeadLetter, Topics, TopicSpec

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


async def test_concurrent_creation_reports_each_topic_created_once(
    kafka_settings: KafkaSettings,
) -> None:
    """Two replicas racing to create the same topics both succeed; the broker's "already
    exists" answers are not reported as created, so every topic is claimed exactly once."""
    specs = [TopicSpec(f"race-{uuid.uuid4().hex[:8]}-{i}", partitions=1, key="k") for i in range(6)]
    first, second = await asyncio.gather(
        ensure_topics(kafka_settings, specs), ensure_topics(kafka_settings, specs)
    )
    assert set(first) | set(second) == {s.name for s in specs}
    assert set(first) & set(second) == set()
    assert await ensure_topics(kafka_settings, specs) == []


def test_per_topic_error_codes_of_a_create_topics_answer_are_read() -> None:
    """The broker's answer (aiokafka's own response type, as decoded from the wire) names a
    refused topic with its error; success and "already exists" are not refusals."""
    answer = CreateTopicsResponse_v3(
        throttle_time_ms=0,
        topic_errors=[
            ("fine", 0, None),
            ("raced", 36, "Topic 'raced' already exists."),
            ("wide", 38, "Replication factor: 3 larger than available brokers: 1."),
            ("policy", 44, None),
        ],
    ).to_object()
    refused = refused_topics(answer)
    assert set(refused) == {"wide", "policy"}
    assert refused["wide"] == (
        "InvalidReplicationFactorError (error 38): Replication factor: 3 larger than "
        "available brokers: 1.",
        False,
    )
    assert refused["policy"][0].startswith("PolicyViolationError (error 44): ")
    error = TopicCreationError(refused)
    assert not error.retriable
    assert "wide: InvalidReplicationFactorError" in str(error)
    assert "KAFKA_REPLICATION_FACTOR" in str(error)


async def test_a_topic_the_broker_refuses_raises_naming_it(
    kafka_settings: KafkaSettings, broker: TansuBroker | None
) -> None:
    """Apache Kafka refuses a replication factor above its broker count: ensure_topics must
    raise instead of reporting the topic as created."""
    if broker is not None:
        pytest.skip(
            "Tansu accepts every CreateTopics request; needs Apache Kafka (make test-containers)"
        )
    wide = kafka_settings.model_copy(update={"replication_factor": 3})
    name = f"refused-{uuid.uuid4().hex[:8]}"
    with pytest.raises(TopicCreationError, match=name) as caught:
        await ensure_topics(wide, [TopicSpec(name, partitions=1, key="k")])
    assert "InvalidReplicationFactorError" in str(caught.value)


async def test_consumers_take_the_fetch_wait_from_the_settings() -> None:
    """``KAFKA_FETCH_MAX_WAIT_MS`` reaches the consumer (the local stack sets it short)."""
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:9", fetch_max_wait_ms=10)
    consumer = KafkaConsumer(settings, ["t"], "g")
    try:
        assert consumer.raw._fetch_max_wait_ms == 10
    finally:
        await consumer.raw.stop()  # never started: releases what the constructor made
    assert KafkaSettings.model_fields["fetch_max_wait_ms"].default == 500  # as aiokafka
