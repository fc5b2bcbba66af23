"""A recorded file replays into the raw topics and yields the same canonical events as live.

Live: ingest-ws publishes to prefix A while ``ingest_ws record`` records the same simulator
streams to a file; the normalizer turns A's raw topic into prices. Replay: the file is replayed
into prefix B and a second normalizer turns it into prices. Both sides must carry the same
events (same ids, prices, sizes, sides, event times).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from coinstream.devstack.kafkatools import read_topic
from coinstream.devstack.stack import ServiceProcess, StackConfig, service_env, stop_all
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaSettings, ensure_topics
from coinstream.schemas import PriceEvent, Topics, decode_event

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]


def config(kafka: KafkaSettings, prefix: str, sim_http: str, log_dir: Path) -> StackConfig:
    return StackConfig(
        bootstrap=kafka.bootstrap_servers,
        database_url="postgresql://unused",
        sim_http=sim_http,
        topic_prefix=prefix,
        local_broker=not kafka.enable_idempotence,  # idempotence is off only on Tansu
        log_dir=log_dir,
        ws_venues=("binance",),
        rest_sources=(),
    )


def comparable(e: PriceEvent) -> tuple[object, ...]:
    """Everything but receipt times: the live and the recording connection receive each frame
    at slightly different moments. Binance bookTicker frames carry no exchange time, so a
    quote's ``event_time`` is its receipt time and is left out for quotes too."""
    event_time = e.event_time if e.kind == "trade" else None
    return (e.event_id, e.kind, e.symbol, e.price, e.size, e.side, e.bid, e.ask, event_time)


async def prices_of(kafka: KafkaSettings, topic: str) -> set[tuple[object, ...]]:
    """Trades and quotes on ``topic``, read until the set stops growing for 3 s.

    Consolidated prices are left out: they are computed on wall-clock intervals, so a replay
    at full speed windows them differently by design.
    """
    seen: set[tuple[object, ...]] = set()
    stable_since = asyncio.get_running_loop().time()
    for _ in range(60):
        records = await read_topic(kafka, topic, min_records=len(seen) + 1, timeout=1.0)
        events = [decode_event(r.value) for r in records]
        now = {
            comparable(e)
            for e in events
            if isinstance(e, PriceEvent) and e.kind in ("trade", "quote")
        }
        if len(now) > len(seen):
            seen, stable_since = now, asyncio.get_running_loop().time()
        elif seen and asyncio.get_running_loop().time() - stable_since >= 3.0:
            break
    return seen


async def test_replayed_recording_yields_the_same_price_events_as_live(
    kafka_settings: KafkaSettings, topics: Topics, tmp_path: Path
) -> None:
    market = Market(rate=20, seed=11)
    market.pause()
    recording = tmp_path / "binance.jsonl.gz"
    prefix_b = f"r{uuid.uuid4().hex[:10]}"
    kafka_b = kafka_settings.model_copy(update={"topic_prefix": prefix_b})
    await ensure_topics(kafka_b, Topics(prefix_b).specs())

    async with SimServer(market) as server:
        live = config(kafka_settings, kafka_settings.topic_prefix, server.base_url, tmp_path)
        ingest = ServiceProcess("ingest-ws", live)
        recorder_env = {**os.environ, **service_env("ingest-ws", live, 0)}
        recorder = subprocess.Popen(  # noqa: ASYNC220 - a separate process by design
            [sys.executable, "-m", "coinstream.ingest_ws", "record", "--out", str(recording)],
            env=recorder_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        ingest.start()
        try:
            # Both connected before the market moves, so both see exactly the same trades.
            for _ in range(200):
                if len(server.sim.recordings.get("binance.connections", [])) >= 2:
                    break
                await asyncio.sleep(0.1)
            assert len(server.sim.recordings.get("binance.connections", [])) >= 2
            await asyncio.sleep(1.0)
            market.pause(False)
            await asyncio.sleep(4.0)
            market.pause()
            await asyncio.sleep(2.0)
        finally:
            recorder.terminate()
            _, err = recorder.communicate(timeout=20)
            codes = stop_all([ingest])
        assert recorder.returncode == 0, err.decode()[-2000:]
        assert codes == {"ingest-ws": 0}

    replay_cfg = config(kafka_b, prefix_b, "http://127.0.0.1:1", tmp_path)
    replay = subprocess.run(  # noqa: ASYNC221 - runs to completion before we read
        [sys.executable, "-m", "coinstream.ingest_ws", "replay", "--in", str(recording)],
        env={**os.environ, **service_env("ingest-ws", replay_cfg, 0)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert replay.returncode == 0, replay.stderr.decode()[-2000:]

    normalizers = [
        ServiceProcess(
            "normalizer",
            config(kafka_settings, kafka_settings.topic_prefix, "http://127.0.0.1:1", tmp_path),
        ),
        ServiceProcess("normalizer", config(kafka_b, prefix_b, "http://127.0.0.1:1", tmp_path)),
    ]
    for n in normalizers:
        n.start()
    try:
        live_prices = await prices_of(kafka_settings, topics.prices)
        replay_prices = await prices_of(kafka_b, Topics(prefix_b).prices)
    finally:
        assert set(stop_all(normalizers).values()) == {0}

    assert len(live_prices) >= 50, "the market produced too few trades for a meaningful check"
    only_replay, only_live = replay_prices - live_prices, live_prices - replay_prices
    assert not only_replay and not only_live, (
        f"{len(live_prices)} live, {len(replay_prices)} replayed; only in replay: "
        f"{sorted(map(str, only_replay))[:3]}; only live: {sorted(map(str, only_live))[:3]}"
    )
