"""Every stage scales by partitions: one replica of the normalize and consolidate roles, then
three of each with replicas joining and leaving mid-stream, turn the same raw records into the
same set of events (id, revision, content) on the prices and candles topics, with nothing lost.

The raw records (Binance, Coinbase and Kraken trades of BTC and ETH, as ingest-ws publishes
them) are built once and produced at a steady pace into each run's own topics, so both runs
see the same input while the replicas rebalance.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coinstream.devstack.kafkatools import read_topic
from coinstream.devstack.stack import ServiceProcess, StackConfig, stop_all
from coinstream.runtime import KafkaProducer, KafkaSettings, ensure_topics
from coinstream.schemas import RawEnvelope, Topics

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

SOURCES = ("binance", "coinbase", "kraken")
RATE = 150  # records per second across the streams
SECONDS = 16


def raw_records(start: datetime) -> list[tuple[str, bytes, bytes, float]]:
    """(source, key, envelope, send at seconds) for every trade of the run."""
    rnd = random.Random(11)
    streams = [
        ("binance", "BTCUSDT", "BTC-USDT"), ("binance", "ETHUSDT", "ETH-USDT"),
        ("coinbase", "BTC-USD", "BTC-USD"), ("kraken", "BTC/USD", "BTC-USD"),
        ("kraken", "ETH/USD", "ETH-USD"),
    ]  # fmt: skip
    out = []
    ids = dict.fromkeys(range(len(streams)), 1000)
    for i in range(RATE * SECONDS):
        s = i % len(streams)
        venue, native, symbol = streams[s]
        ids[s] += 1
        at = i / RATE
        t = start + timedelta(seconds=at)
        px = f"{(64000 if symbol.startswith('BTC') else 3100) * (1 + rnd.uniform(-1e-3, 1e-3)):.2f}"
        qty = f"{rnd.uniform(0.001, 0.5):.4f}"
        if venue == "binance":
            ms = int(t.timestamp() * 1000)
            data = {"e": "trade", "E": ms, "s": native, "t": ids[s], "p": px, "q": qty, "T": ms,
                    "m": i % 2 == 0, "M": True}  # fmt: skip
            payload, channel = (
                {"stream": f"{native.lower()}@trade", "data": data},
                f"{native.lower()}@trade",
            )
        elif venue == "coinbase":
            stamp = t.isoformat().replace("+00:00", "Z")
            trade = {"trade_id": str(ids[s]), "product_id": native, "price": px, "size": qty,
                     "side": "BUY", "time": stamp}  # fmt: skip
            payload = {"channel": "market_trades", "timestamp": stamp, "sequence_num": i,
                       "events": [{"type": "update", "trades": [trade]}]}  # fmt: skip
            channel = "market_trades"
        else:
            trade = {"symbol": native, "side": "buy", "price": float(px), "qty": float(qty),
                     "ord_type": "market", "trade_id": ids[s],
                     "timestamp": t.isoformat().replace("+00:00", "Z")}  # fmt: skip
            payload, channel = {"channel": "trade", "type": "update", "data": [trade]}, "trade"
        env = RawEnvelope(
            envelope_id=f"e-{i}",
            source=venue,
            channel=channel,
            received_at=t + timedelta(milliseconds=15),
            payload=json.dumps(payload),
            connection_id="scaling",
        )
        out.append((venue, f"{venue}:{symbol}".encode(), env.to_json(), at))
    return out


async def produce(kafka: KafkaSettings, topics: Topics, records: list[Any]) -> None:
    loop = asyncio.get_running_loop()
    begin = loop.time()
    async with KafkaProducer(kafka) as producer:
        for source, key, value, at in records:
            delay = begin + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await producer.send(topics.raw(source), value, key=key)


def stack(kafka: KafkaSettings, prefix: str, log_dir: Path) -> StackConfig:
    common = {"NORMALIZER_GROUP_ID": f"n-{prefix}", "NORMALIZER_DEDUP_WINDOW": "100000"}
    consolidation = {
        "NORMALIZER_CONSOLIDATED__INTERVAL_S": "2",
        "NORMALIZER_CONSOLIDATED__WINDOW_S": "6",
        "NORMALIZER_CONSOLIDATED__GRACE_S": "8",  # outlasts a rebalance pause
    }
    return StackConfig(
        bootstrap=kafka.bootstrap_servers,
        database_url="postgresql://unused",
        sim_http="http://127.0.0.1:1",
        topic_prefix=prefix,
        local_broker=not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        log_dir=log_dir,
        ws_venues=(),
        rest_sources=(),
        extra_env={
            "normalizer": common
            | {
                "NORMALIZER_SOURCES": json.dumps(list(SOURCES)),
                "NORMALIZER_CANDLES__INTERVAL_S": "2",
                "NORMALIZER_CANDLES__GRACE_S": "1",
            },
            "consolidator": common | {"NORMALIZER_GROUP_ID": f"c-{prefix}"} | consolidation,
        },
    )


Event = tuple[str, str, int, str]


async def events(kafka: KafkaSettings, topics: Topics) -> set[Event]:
    """(topic, event id, revision, content) of every price and candle."""
    records = await read_topic(
        kafka, [topics.prices, topics.candles], min_records=10**9, timeout=60, idle_s=4
    )
    out = set()
    for r in records:
        doc = json.loads(r.value)
        out.add(
            (r.topic.rsplit(".", 2)[-2], doc["event_id"], doc.get("revision", 0), r.value.decode())
        )
    return out


async def run(
    kafka: KafkaSettings, records: list[Any], tmp: Path, replicas: int
) -> tuple[set[Event], dict[str, int]]:
    prefix = f"scale-{uuid.uuid4().hex[:6]}"
    topics = Topics(prefix)
    settings = kafka.model_copy(update={"topic_prefix": prefix})
    await ensure_topics(settings, topics.specs(sources=SOURCES) + topics.internal_specs())
    procs: list[ServiceProcess] = []

    def start(i: int) -> None:
        cfg = stack(settings, prefix, tmp / f"{prefix}-{i}")
        cfg.log_dir.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        for name in ("normalizer", "consolidator"):
            p = ServiceProcess(name, cfg)
            p.start()
            procs.append(p)

    start(0)
    feeding = asyncio.create_task(produce(settings, topics, records))
    codes: dict[str, int] = {}
    try:
        if replicas > 1:  # members join, then the first leaves: rebalances mid-stream
            for i in range(1, replicas):
                await asyncio.sleep(3)
                start(i)
            await asyncio.sleep(3)
            for p in procs[:2]:
                p.stop()
        await feeding
        got = await events(settings, topics)
    finally:
        feeding.cancel()
        stop_all(procs)
        codes = {
            f"{p.name}-{i}": p.proc.returncode if p.proc is not None else -1
            for i, p in enumerate(procs)
        }
    return got, codes


async def test_one_and_three_replicas_give_the_same_events(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    records = raw_records(start)
    single, codes1 = await run(kafka_settings, records, tmp_path, replicas=1)
    scaled, codes3 = await run(kafka_settings, records, tmp_path, replicas=3)
    assert set(codes1.values()) == {0} and set(codes3.values()) == {0}, (codes1, codes3)
    kinds = {(t, json.loads(c).get("kind", "candle")) for t, _, _, c in single}
    assert {("prices", "trade"), ("prices", "consolidated"), ("candles", "candle")} <= kinds
    trades = {e for e in single if json.loads(e[3]).get("kind") == "trade"}
    assert len(trades) == len(records)  # nothing lost on the way
    assert scaled == single, (
        f"{len(scaled - single)} events only with 3 replicas, {len(single - scaled)} only with 1"
    )
