"""Rolling the local broker over: a fresh Tansu holds what the groups still need, at the
same offsets, with the same commits; nothing a consumer has not committed is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition

from coinstream.devstack.broker import TansuBroker
from coinstream.devstack.rollover import BrokerRoller, rss_mb
from coinstream.runtime import KafkaSettings

pytestmark = pytest.mark.kafka

T0, T1 = TopicPartition("t", 0), TopicPartition("t", 1)


@pytest.fixture
def broker(tmp_path: Path) -> TansuBroker:
    with TansuBroker(log_path=tmp_path / "tansu.log") as b:
        yield b


async def _topics(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic("t", 2, 1),
                NewTopic("c", 1, 1, topic_configs={"cleanup.policy": "compact"}),
                NewTopic("dlq", 1, 1),
            ]
        )
    finally:
        await admin.close()


async def _read(bootstrap: str, tp: TopicPartition, group: str | None = None) -> list[tuple]:  # type: ignore[type-arg]
    """Everything a new reader of ``tp`` gets: from the beginning, or from the group's commit."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    out = []
    try:
        consumer.assign([tp])
        if group is None:
            await consumer.seek_to_beginning(tp)
        empty = 0
        while empty < 3:
            batch = await consumer.getmany(timeout_ms=200)
            if not batch:
                empty += 1
            for records in batch.values():
                out += [(r.offset, r.key, r.value, r.timestamp, tuple(r.headers)) for r in records]
        return out
    finally:
        await consumer.stop()


async def _commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def test_a_roll_over_keeps_what_groups_need_at_the_same_offsets(
    broker: TansuBroker,
) -> None:
    """Records below every group's commit are released; the rest keep offset, key, value,
    headers and timestamp; commits survive; new records continue at the old end; a compacted
    topic keeps the newest record per key; an unconsumed topic listed as trimmable keeps its
    newest records."""
    bs = broker.bootstrap
    await _topics(bs)
    producer = AIOKafkaProducer(bootstrap_servers=bs, enable_idempotence=False, linger_ms=5)
    await producer.start()
    try:
        for i in range(100):  # one batch each: whole batches are what a roll-over keeps
            await producer.send_and_wait(
                "t",
                b"v%d" % i,
                key=b"k%d" % (i % 7),
                partition=0,
                headers=[("h", b"%d" % i)],
                timestamp_ms=1_700_000_000_000 + i,
            )
        for i in range(50):
            await producer.send("t", b"w%d" % i, partition=1)
        for i in range(12):
            await producer.send("c", b"c%d" % i, key=b"key%d" % (i % 3), partition=0)
        for i in range(30):
            await producer.send("dlq", b"d%d" % i, partition=0)
        await producer.flush()
    finally:
        await producer.stop()
    before = await _read(bs, T0)
    await _commit(bs, "a", {T0: 60, T1: 50})
    await _commit(bs, "b", {T0: 80})  # b has no commit on t:1 yet: it needs all of it
    kafka = KafkaSettings(bootstrap_servers=bs, enable_idempotence=False)
    roller = BrokerRoller(
        broker, kafka, [], max_rss_mb=1, trim_unconsumed={"dlq"}, keep_unconsumed=10
    )
    old_pid = broker.pid
    report = await roller.roll()
    assert broker.pid != old_pid and report.kept == 40 + 50 + 3 + 10

    assert await _read(bs, T0) == before[60:]  # same offsets, keys, values, headers, times
    assert [r[0] for r in await _read(bs, T1)] == list(range(50))
    assert [r[0] for r in await _read(bs, T0, group="a")] == list(range(60, 100))
    assert [r[0] for r in await _read(bs, T0, group="b")] == list(range(80, 100))
    compacted = await _read(bs, TopicPartition("c", 0))
    assert [(r[0], r[1], r[2]) for r in compacted] == [
        (9, b"key0", b"c9"),
        (10, b"key1", b"c10"),
        (11, b"key2", b"c11"),
    ]
    assert [r[0] for r in await _read(bs, TopicPartition("dlq", 0))] == list(range(20, 30))
    producer = AIOKafkaProducer(bootstrap_servers=bs, enable_idempotence=False)
    await producer.start()
    try:
        assert (await producer.send_and_wait("t", b"new", partition=0)).offset == 100
        assert (await producer.send_and_wait("t", b"new", partition=1)).offset == 50
    finally:
        await producer.stop()
    # a second roll-over over the first one's gap batches
    await _commit(bs, "b", {T0: 101, T1: 51})
    await roller.roll()
    assert [r[0] for r in await _read(bs, T0)] == list(range(60, 101))


CLIENT = textwrap.dedent(
    """
    import asyncio, sys
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def main(bootstrap, n, out):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False,
                                    acks="all", linger_ms=5)
        consumer = AIOKafkaConsumer("s", bootstrap_servers=bootstrap, group_id="g",
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    session_timeout_ms=2000, heartbeat_interval_ms=500,
                                    fetch_max_wait_ms=10)
        await producer.start()
        await consumer.start()
        async def produce():
            for i in range(n):
                await producer.send("s", str(i).encode(), key=str(i % 5).encode())
                if i % 50 == 0:
                    await asyncio.sleep(0.01)
            await producer.flush()
        task = asyncio.create_task(produce())
        seen = set()
        with open(out, "w") as f:
            while len(seen) < n:
                batch = await consumer.getmany(timeout_ms=200)
                for recs in batch.values():
                    for r in recs:
                        seen.add(int(r.value))
                        f.write(r.value.decode() + "\\n")
                if batch:
                    f.flush()
                    try:
                        await consumer.commit()
                    except Exception:
                        pass  # a rebalance: the records are consumed again
        await task
        await consumer.stop()
        await producer.stop()

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
    """
)


@pytest.mark.slow
async def test_frozen_clients_lose_nothing_across_roll_overs(
    broker: TansuBroker, tmp_path: Path
) -> None:
    """A producer and a group consumer in another process, frozen mid-stream while the broker
    rolls over twice: the consumer ends up with every record produced."""
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic("s", 3, 1)])
    await admin.close()
    n = 20_000
    out = tmp_path / "seen.txt"
    proc = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-c", CLIENT, broker.bootstrap, str(n), str(out)],
        start_new_session=True,
    )
    try:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
        roller = BrokerRoller(broker, kafka, [proc.pid], max_rss_mb=1)
        for seen_before_roll in (2_000, 8_000):
            while not out.exists() or len(out.read_text().split()) < seen_before_roll:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            await roller.roll()
        assert await asyncio.to_thread(proc.wait, 120) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    seen = {int(v) for v in out.read_text().split()}
    assert seen == set(range(n))
    assert roller.rolls == 2 and rss_mb(broker.pid) > 0
