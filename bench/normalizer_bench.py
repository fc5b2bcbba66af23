"""Normalizer throughput: both engines vs a bare aiokafka consume -> produce pass-through.

Pushes a large batch of raw Binance records (trades and bookTickers over several symbols,
as ingest-ws publishes them) through, in one run and over the same broker:

1. the core alone (no Kafka), optionally under cProfile (``--profile``);
2. a bare aiokafka pass-through: consume batches, ``send_batch`` the values unchanged,
   await the acks, commit;
3. the default engine (aiokafka): consume, normalize, produce batches, commit after acks;
4. the faust-streaming engine (fewer records: it is much slower per message).

Prints records/s and ratios to the pass-through. Usage::

    .venv/bin/python bench/normalizer_bench.py [--records 100000] [--faust-records 10000]

Set ``KAFKA_BOOTSTRAP_SERVERS`` to use a running broker; otherwise a local Tansu is started.
This is a script that prints figures, never a test with timed assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from coinstream.devstack.broker import TansuBroker
from coinstream.normalizer.app import build_core
from coinstream.normalizer.engine_aiokafka import AiokafkaEngine
from coinstream.normalizer.engine_faust import FaustEngine
from coinstream.normalizer.settings import NormalizerSettings
from coinstream.runtime import KafkaConsumer, KafkaProducer, KafkaSettings, ensure_topics
from coinstream.runtime.kafka import connection_kwargs
from coinstream.schemas import RawEnvelope

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "PEPEUSDT")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_records(n: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """``n`` raw envelopes: 90 % trades, 10 % bookTickers, trade times 1 ms apart."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        sym = SYMBOLS[i % len(SYMBOLS)]
        lower = sym.lower()
        t_ms = int(T0.timestamp() * 1000) + i
        px = f"{100 + rnd.random():.8f}"
        if i % 10 == 9:
            data = {"u": i, "s": sym, "b": px, "B": "1.5", "a": px, "A": "2.5"}
            stream = f"{lower}@bookTicker"
        else:
            data = {"e": "trade", "E": t_ms, "s": sym, "t": i, "p": px, "q": "0.01000000", "T": t_ms, "m": i % 3 == 0, "M": True}  # fmt: skip
            stream = f"{lower}@trade"
        env = RawEnvelope(
            envelope_id=uuid.uuid4().hex,
            source="binance",
            channel=stream,
            received_at=T0 + timedelta(milliseconds=i),
            payload=orjson.dumps({"stream": stream, "data": data}).decode(),
            connection_id="bench",
        )
        base = sym.removesuffix("USDT")
        out.append((f"binance:{base}-USDT".encode(), env.to_json()))
    return out


async def produce_all(
    settings: KafkaSettings, topic: str, records: list[tuple[bytes, bytes]]
) -> None:
    from coinstream.normalizer.sender import BatchSender

    async with KafkaProducer(settings) as producer:
        sender = BatchSender(producer)
        for i in range(0, len(records), 20_000):
            chunk = records[i : i + 20_000]
            await asyncio.gather(*await sender.send((topic, k, v) for k, v in chunk))


async def passthrough(settings: KafkaSettings, src: str, dst: str, n: int) -> float:
    """Bare loop: consume a batch, send_batch the values to ``dst`` per partition, await acks,
    commit. Returns records/s from the first record to the last acknowledged batch."""
    done = 0
    started = 0.0
    async with (
        KafkaProducer(settings) as producer,
        KafkaConsumer(settings, [src], f"pt-{uuid.uuid4().hex[:6]}") as consumer,
    ):
        raw = producer.raw
        while done < n:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            if not batch:
                continue
            if not started:
                started = time.perf_counter()
            futures = []
            offsets = {}
            for tp, recs in batch.items():
                b = raw.create_batch()
                for r in recs:
                    if b.append(key=r.key, value=r.value, timestamp=None) is None:
                        b.close()
                        futures.append(await raw.send_batch(b, dst, partition=tp.partition))
                        b = raw.create_batch()
                        b.append(key=r.key, value=r.value, timestamp=None)
                b.close()
                futures.append(await raw.send_batch(b, dst, partition=tp.partition))
                offsets[tp] = recs[-1].offset + 1
                done += len(recs)
            await asyncio.gather(*futures)
            await consumer.commit(offsets)
    return n / (time.perf_counter() - started)


async def run_engine(settings: NormalizerSettings, engine_name: str, src: str, n: int) -> float:
    core = build_core(settings)
    stop = asyncio.Event()
    engine: AiokafkaEngine | FaustEngine
    if engine_name == "faust":
        engine = FaustEngine(core, settings, [src])
        task = asyncio.create_task(engine.run(stop))
    else:
        producer = KafkaProducer(settings.kafka)
        await producer.start()
        engine = AiokafkaEngine(
            core,
            producer,
            [src],
            settings.group_id,
            settings.batch_max_records,
            settings.poll_timeout_ms,
        )
        task = asyncio.create_task(engine.run(stop))
    started = 0.0
    try:
        while engine.delivered < n:
            if task.done():
                task.result()
            if not started and core.totals["records"]:
                started = time.perf_counter()
            await asyncio.sleep(0.002)
        return n / (time.perf_counter() - started)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        if engine_name != "faust":
            await producer.aclose()


def core_only(
    settings: NormalizerSettings, records: list[tuple[bytes, bytes]], profile: bool
) -> float:
    core = build_core(settings)
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    cpu = time.process_time()
    if profiler:
        profiler.enable()
    for offset, (key, value) in enumerate(records):
        core.process("bench.raw", 0, offset, key, value)
    if profiler:
        profiler.disable()
    rate = len(records) / (time.perf_counter() - started)
    cpu_rate = len(records) / (time.process_time() - cpu)
    print(f"  (core CPU time: {cpu_rate:,.0f} records per CPU-second)")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    return rate


async def main(args: argparse.Namespace) -> None:
    with ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        local = not bootstrap
        if local:
            broker = stack.enter_context(TansuBroker())
            bootstrap = broker.bootstrap
        assert bootstrap
        prefix = f"bench{uuid.uuid4().hex[:6]}"
        kafka = KafkaSettings(
            bootstrap_servers=bootstrap, topic_prefix=prefix, enable_idempotence=not local,
            session_timeout_ms=2000 if local else 6000, heartbeat_interval_ms=500 if local else 2000,
        )  # fmt: skip
        topics = kafka.topics
        await ensure_topics(kafka, topics.specs(sources=("binance",)))
        admin = AIOKafkaAdminClient(**connection_kwargs(kafka))
        await admin.start()
        await admin.create_topics([NewTopic(f"{prefix}.passthrough", 3, 1)])
        await admin.close()

        records = make_records(args.records)
        faust_records = records[: args.faust_records]
        settings = NormalizerSettings(kafka=kafka, sources=("binance",), group_id=f"n-{prefix}")
        print(
            f"records: {len(records)} ({sum(len(v) for _, v in records) / len(records):.0f} B avg), local broker: {local}"
        )

        rate_core = core_only(settings, records, args.profile)
        print(f"core only (no Kafka)            {rate_core:>10,.0f} records/s")
        bare = settings.model_copy(
            update={
                "dedup_window": 0,
                "candles": settings.candles.model_copy(update={"enabled": False}),
                "consolidated": settings.consolidated.model_copy(update={"enabled": False}),
            }
        )
        rate_bare = core_only(bare, records, False)
        print(
            f"core only, parse+serialize only {rate_bare:>10,.0f} records/s  (no dedup/candles/consolidation)"
        )

        src = topics.raw("binance")
        await produce_all(kafka, src, records)
        rate_pt = await passthrough(kafka, src, f"{prefix}.passthrough", len(records))
        print(f"bare aiokafka pass-through      {rate_pt:>10,.0f} records/s")
        rate_default = await run_engine(settings, "aiokafka", src, len(records))
        print(
            f"default engine (aiokafka)       {rate_default:>10,.0f} records/s   ratio {rate_default / rate_pt:.2f}"
        )
        fs = settings.model_copy(update={"group_id": f"f-{prefix}"})
        fsrc_records = faust_records
        rate_faust = await run_engine(fs, "faust", src, len(fsrc_records))
        print(
            f"faust engine ({len(fsrc_records)} records)    {rate_faust:>10,.0f} records/s   ratio {rate_faust / rate_pt:.3f}"
        )
        rate_pt2 = await passthrough(kafka, src, f"{prefix}.passthrough", len(records))
        print(f"bare aiokafka pass-through (2)  {rate_pt2:>10,.0f} records/s")
        rate_default2 = await run_engine(
            settings.model_copy(update={"group_id": f"n2-{prefix}"}), "aiokafka", src, len(records)
        )
        print(
            f"default engine (2)              {rate_default2:>10,.0f} records/s   ratio {rate_default2 / rate_pt2:.2f}"
        )
        bare_settings = bare.model_copy(update={"group_id": f"n3-{prefix}"})
        rate_bare_engine = await run_engine(bare_settings, "aiokafka", src, len(records))
        print(
            f"default engine, parse+serialize {rate_bare_engine:>10,.0f} records/s   ratio {rate_bare_engine / rate_pt2:.2f}"
            "  (no dedup/candles/consolidation)"
        )
        print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--faust-records", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true", help="cProfile the core-only pass")
    asyncio.run(main(parser.parse_args()))
