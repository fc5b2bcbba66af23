"""Work leases: a stable key split, and members of one group on the real broker that share the
work topic's partitions disjointly and completely, handing everything over when one leaves."""

from __future__ import annotations

import asyncio
import uuid
import zlib
from collections.abc import Callable

import pytest

from coinstream.devstack.ports import free_port
from coinstream.runtime import (
    KafkaSettings,
    ResourceClosedError,
    WorkLeases,
    ensure_topics,
    partition_for,
)
from coinstream.schemas import TopicSpec


def test_partition_for_is_crc32_modulo_the_partition_count() -> None:
    """Stable across processes (not Python's salted hash) and spread over every partition."""
    assert partition_for("coingecko/simple_price", 12) == zlib.crc32(b"coingecko/simple_price") % 12
    keys = [f"source{i}/endpoint{j}" for i in range(8) for j in range(12)]
    assert {partition_for(k, 12) for k in keys} == set(range(12))
    assert all(partition_for(k, 1) == 0 for k in keys)
    with pytest.raises(ValueError):
        partition_for("x", 0)


async def _until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@pytest.fixture
async def work_topic(kafka_settings: KafkaSettings) -> str:
    topic = f"{kafka_settings.topic_prefix}.test.work.v1"
    await ensure_topics(kafka_settings, [TopicSpec(topic, 6, "none")])
    return topic


@pytest.mark.kafka
@pytest.mark.timeout(60)
async def test_two_members_split_the_partitions_and_the_survivor_takes_all(
    kafka_settings: KafkaSettings, work_topic: str
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    a = WorkLeases(kafka_settings, work_topic, group)
    b = WorkLeases(kafka_settings, work_topic, group)
    assert not a.owns("x") and a.readiness()[0] is False  # nothing before the first assignment
    changes: list[frozenset[int]] = []
    a.add_listener(lambda: changes.append(a.owned))
    async with a:
        assert await a.wait_assigned(20)
        assert await _until(lambda: a.owned == frozenset(range(6)))
        assert a.total == 6 and a.share == 1.0 and a.owns("anything")
        async with b:

            def split() -> bool:
                return (
                    bool(a.owned)
                    and bool(b.owned)
                    and not a.owned & b.owned
                    and a.owned | b.owned == frozenset(range(6))
                )

            assert await _until(split), (a.owned, b.owned)
            keys = [f"src/{i}" for i in range(50)]
            assert all(a.owns(k) != b.owns(k) for k in keys)  # each key has one owner
            assert a.readiness() == (True, f"owns {len(a.owned)} of 6 work partitions")
        assert await _until(lambda: a.owned == frozenset(range(6))), a.owned
        assert b.owned == frozenset() and not b.assigned
    # a revoke was seen as a drop before the new, smaller assignment
    assert any(len(c) < 6 for c in changes)
    await a.aclose()  # idempotent
    with pytest.raises(ResourceClosedError):
        await a.start()


@pytest.mark.kafka
@pytest.mark.timeout(30)
async def test_unreachable_broker_owns_nothing_and_retries(kafka_settings: KafkaSettings) -> None:
    """No broker: the member owns nothing, keeps retrying and readiness names the error."""
    settings = kafka_settings.model_copy(update={"bootstrap_servers": f"127.0.0.1:{free_port()}"})
    async with WorkLeases(settings, "nowhere.work.v1", "g-none") as leases:
        assert not await leases.wait_assigned(2.0)
        assert await _until(lambda: leases.last_error is not None, 10)
        ok, detail = leases.readiness()
        assert not ok and "last error" in detail
        assert not leases.owns("x")
