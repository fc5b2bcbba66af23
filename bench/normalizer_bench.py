"""Normalizer throughput: both engines vs a bare aiokafka consume -> produce pass-through.

Pushes a large batch of raw Binance records (trades and bookTickers over several symbols,
as ingest-ws publishes them) through, in one run and over the same broker:

1. the core alone (no Kafka): CPU time per record, optionally under cProfile (``--profile``);
2. the baselines, each over the same records and broker:
   - "bare pass-through": a minimal aiokafka loop: consume a batch (``getmany``, 5000
     records), ``create_batch``/``send_batch`` the records unchanged per partition, await
     the acks, commit;
   - "engine pass-through": the default engine's own code (same consumer settings, batch
     size, murmur2 partitioning, ``send_batch`` per partition, overlap of transform and acks,
     commit after acks) with the transform replaced by an identity (value copied through);
3. the default engine (aiokafka): consume, normalize, produce batches, commit after acks;
4. the faust-streaming engine once (fewer records: it is much slower per message).

``--rounds`` repeats (2) and (3) in alternating order so machine noise hits every variant;
ratios are computed within a round. Every figure is printed. Usage::

    .venv/bin/python bench/normalizer_bench.py [--records 100000] [--rounds 3]
        [--faust-records 10000] [--profile] [--cryptofeed]

``--cryptofeed`` also times cryptofeed 2.4.1 (in a separate virtual environment) on the same
``aggTrade`` messages next to this core, CPU time per message in one run.

Set ``KAFKA_BOOTSTRAP_SERVERS`` to use a running broker; otherwise a local Tansu is started.
This is a script that prints figures, never a test with timed assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from coinstream.devstack.broker import TansuBroker
from coinstream.normalizer.app import build_core
from coinstream.normalizer.core import Output
from coinstream.normalizer.engine_aiokafka import AiokafkaEngine
from coinstream.normalizer.engine_faust import FaustEngine
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.settings import NormalizerSettings
from coinstream.runtime import KafkaConsumer, KafkaProducer, KafkaSettings, ensure_topics
from coinstream.runtime.kafka import connection_kwargs
from coinstream.schemas import RawEnvelope

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "PEPEUSDT")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_records(n: int, seed: int = 7, agg: bool = False) -> list[tuple[bytes, bytes]]:
    """``n`` raw envelopes: 90 % trades, 10 % bookTickers, trade times 1 ms apart (``agg``:
    every record an ``aggTrade``, the stream cryptofeed parses for trades)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        sym = SYMBOLS[i % len(SYMBOLS)]
        lower = sym.lower()
        t_ms = int(T0.timestamp() * 1000) + i
        px = f"{100 + rnd.random():.8f}"
        if agg:
            data = {"e": "aggTrade", "E": t_ms, "s": sym, "a": i, "p": px, "q": "0.01000000", "f": i, "l": i, "T": t_ms, "m": i % 3 == 0, "M": True}  # fmt: skip
            stream = f"{lower}@aggTrade"
        elif i % 10 == 9:
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
    from coinstream.runtime import BatchSender

    async with KafkaProducer(settings) as producer:
        sender = BatchSender(producer)
        for i in range(0, len(records), 20_000):
            chunk = records[i : i + 20_000]
            await asyncio.gather(*await sender.send((topic, k, v) for k, v in chunk))


async def passthrough(settings: KafkaSettings, src: str, dst: str, n: int) -> float:
    """Bare loop: consume a batch, send_batch the records to ``dst`` per partition, await acks,
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


class IdentityCore:
    """The engine's core interface with an identity transform: every record goes to ``dst``
    unchanged (same key and value), nothing is held, offsets commit to the batch end."""

    candles = None

    def __init__(self, dst: str) -> None:
        self.dst = dst
        self.registry = Registry()
        self.stats: dict[str, dict[str, int]] = {
            "records": {}, "events": {}, "dead_letters": {}, "misc": {},
        }  # fmt: skip
        self.totals = {"records": 0}

    def process(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes
    ) -> tuple[list[Output], None]:
        return [Output(self.dst, key or b"", value)], None

    def commit_offset(self, tp: tuple[str, int], next_offset: int) -> int:
        return next_offset

    def floor(self, tp: tuple[str, int]) -> int | None:
        return None  # nothing held

    def reset(self) -> None:
        pass


async def run_engine(
    settings: NormalizerSettings, engine_name: str, src: str, n: int, core: Any = None
) -> float:
    """records/s of an engine from its first consumed batch to the last acknowledged one."""
    core = core if core is not None else build_core(settings)
    stop = asyncio.Event()
    started = 0.0
    engine: AiokafkaEngine | FaustEngine
    producer: KafkaProducer | None = None
    if engine_name == "faust":
        engine = FaustEngine(core, settings, [src])
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
    process = core.process

    def timed_process(*args: Any) -> Any:  # marks the start: the first record handed over
        nonlocal started
        if not started:
            started = time.perf_counter()
        return process(*args)

    core.process = timed_process
    task = asyncio.create_task(engine.run(stop))
    try:
        while engine.delivered < n:
            if task.done():
                task.result()
            if started and core.process is timed_process and engine.delivered:
                core.process = process  # started; drop the wrapper
            await asyncio.sleep(0.002)
        return n / (time.perf_counter() - started)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        if producer is not None:
            await producer.aclose()


def core_only(
    settings: NormalizerSettings, records: list[tuple[bytes, bytes]], profile: bool
) -> float:
    """Core records per CPU-second (process time, so other load on the machine matters less)."""
    core = build_core(settings)
    profiler = cProfile.Profile() if profile else None
    cpu = time.process_time()
    if profiler:
        profiler.enable()
    for offset, (key, value) in enumerate(records):
        core.process("bench.raw", 0, offset, key, value)
    if profiler:
        profiler.disable()
    cpu_rate = len(records) / (time.process_time() - cpu)
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    return cpu_rate


CRYPTOFEED = "cryptofeed==2.4.1"


def cryptofeed_python() -> Path:
    """A virtual environment with cryptofeed (created once, outside the repository)."""
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    venv = home / "coinstream-bench" / CRYPTOFEED.replace("==", "-")
    python = venv / "bin" / "python"
    if not python.exists():
        uv = Path(sys.executable).with_name("uv")
        print(f"installing {CRYPTOFEED} into {venv} (once)")
        subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(
            [str(uv), "pip", "install", "-q", "--python", str(python), CRYPTOFEED], check=True
        )
    return python


def compare_cryptofeed(settings: NormalizerSettings, n: int) -> None:
    """Our core and cryptofeed on the same aggTrade messages, CPU microseconds per message."""
    records = make_records(n, agg=True)
    frames = [json.loads(RawEnvelope.model_validate_json(v).payload) for _, v in records]
    ours = 1e6 / core_only(settings, records, profile=False)
    bare = settings.model_copy(
        update={
            "dedup_window": 0,
            "candles": settings.candles.model_copy(update={"enabled": False}),
            "consolidated": settings.consolidated.model_copy(update={"enabled": False}),
        }
    )
    ours_bare = 1e6 / core_only(bare, records, profile=False)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump([json.dumps(fr, separators=(",", ":")) for fr in frames], f)
        f.flush()
        script = Path(__file__).with_name("cryptofeed_baseline.py")
        out = subprocess.run(
            [str(cryptofeed_python()), str(script), f.name],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
    cf = json.loads(out.strip().splitlines()[-1])
    print(
        f"aggTrade, {n} messages, CPU us per message: coinstream core {ours:.1f} (dedup, "
        f"candles, outputs for prices and trades-by-asset) / {ours_bare:.1f} (parse, check, "
        f"write) | cryptofeed 2.4.1 parse {cf['parse']:.1f}, parse + JSON "
        f"{cf['parse_serialize']:.1f} | ratio core / cryptofeed+JSON "
        f"{ours / cf['parse_serialize']:.2f}, parse-and-write / cryptofeed+JSON "
        f"{ours_bare / cf['parse_serialize']:.2f}, core / cryptofeed parse {ours / cf['parse']:.2f}"
    )


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
        settings = NormalizerSettings(kafka=kafka, sources=("binance",), group_id=f"n-{prefix}")
        avg = sum(len(v) for _, v in records) / len(records)
        print(f"records: {len(records)} ({avg:.0f} B avg), local broker: {local}")
        bare = settings.model_copy(
            update={
                "dedup_window": 0,
                "candles": settings.candles.model_copy(update={"enabled": False}),
                "consolidated": settings.consolidated.model_copy(update={"enabled": False}),
            }
        )
        for label, st in (("core", settings), ("core, no dedup/candles/consolidation", bare)):
            rate = core_only(st, records, args.profile and st is settings)
            print(f"{label:38s} {rate:>9,.0f} records per CPU-second ({1e6 / rate:.1f} us)")
        if args.cryptofeed:
            compare_cryptofeed(settings, args.cryptofeed_messages)

        src = topics.raw("binance")
        dst = f"{prefix}.passthrough"
        await produce_all(kafka, src, records)
        n = len(records)
        variants = ("bare pass-through", "engine pass-through", "default engine")
        for rnd in range(args.rounds):
            order = variants if rnd % 2 == 0 else variants[::-1]
            rates: dict[str, float] = {}
            for name in order:
                group = settings.model_copy(update={"group_id": f"g{rnd}-{uuid.uuid4().hex[:6]}"})
                if name == "bare pass-through":
                    rates[name] = await passthrough(kafka, src, dst, n)
                elif name == "engine pass-through":
                    rates[name] = await run_engine(group, "aiokafka", src, n, IdentityCore(dst))
                else:
                    rates[name] = await run_engine(group, "aiokafka", src, n)
            base, same = rates["bare pass-through"], rates["engine pass-through"]
            engine = rates["default engine"]
            print(
                f"round {rnd + 1}: bare pass-through {base:>8,.0f}/s | engine pass-through "
                f"{same:>8,.0f}/s | default engine {engine:>8,.0f}/s | ratio to bare "
                f"{engine / base:.2f}, to engine pass-through {engine / same:.2f}"
            )
        if args.faust_records:
            fs = settings.model_copy(update={"group_id": f"f-{prefix}"})
            base = await passthrough(kafka, src, dst, args.faust_records)
            rate_faust = await run_engine(fs, "faust", src, args.faust_records)
            print(
                f"faust engine ({args.faust_records} records) {rate_faust:>8,.0f}/s | bare "
                f"pass-through (same records) {base:>8,.0f}/s | ratio {rate_faust / base:.3f}"
            )
        print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--faust-records", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true", help="cProfile the core-only pass")
    parser.add_argument(
        "--cryptofeed",
        action="store_true",
        help=f"also time {CRYPTOFEED} on the same aggTrade messages (installed into its own "
        "virtual environment under ~/.cache/coinstream-bench the first time)",
    )
    parser.add_argument("--cryptofeed-messages", type=int, default=50_000)
    asyncio.run(main(parser.parse_args()))
