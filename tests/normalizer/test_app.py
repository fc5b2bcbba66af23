"""The service end to end on the real broker: raw Binance frames in, canonical topics out."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid

import aiohttp
import pytest

from coinstream.devstack.kafkatools import read_topic
from coinstream.devstack.ports import free_port
from coinstream.runtime import KafkaProducer, KafkaSettings
from coinstream.schemas import DeadLetter, PriceEvent, Topics, decode_event

from .normalizer_helpers import binance_trade, raw, running, settings_for

pytestmark = pytest.mark.kafka

T0 = 1_712_508_600_000  # 2024-04-07T16:50:00Z in ms


async def test_binance_frames_become_prices_and_bad_records_dead_letters(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Trades and bookTickers go to prices keyed by canonical symbol; junk goes to the DLQ."""
    book = {
        "stream": "btcusdt@bookTicker",
        "data": {
            "u": 400900217,
            "s": "BTCUSDT",
            "b": "25.35190000",
            "B": "31.21000000",
            "a": "25.36520000",
            "A": "40.66000000",
        },
    }
    async with KafkaProducer(kafka_settings) as producer:
        key = b"binance:BTC-USDT"
        for i in range(3):
            payload = binance_trade("BTCUSDT", 100 + i, f"6718{i}.10", "0.001", T0 + i)
            await producer.send(
                topics.raw("binance"), raw("binance", "btcusdt@trade", payload), key=key
            )
        await producer.send(
            topics.raw("binance"), raw("binance", "btcusdt@bookTicker", book), key=key
        )
        await producer.send(topics.raw("binance"), b"{not an envelope", key=key)
        await producer.send(
            topics.raw("binance"), raw("binance", "btcusdt@trade", "{truncated"), key=key
        )
        await producer.flush()
    async with running(settings_for(kafka_settings, sources=("binance",))):
        prices = await read_topic(kafka_settings, topics.prices, min_records=4, timeout=20)
        letters = await read_topic(kafka_settings, topics.dlq, min_records=2, timeout=20)
    events = [decode_event(r.value) for r in prices]
    assert {r.key for r in prices} == {b"BTC-USDT"}
    trades = sorted(
        (e for e in events if isinstance(e, PriceEvent) and e.kind == "trade"),
        key=lambda e: e.trade_id or "",
    )
    assert [str(t.price) for t in trades] == ["67180.10", "67181.10", "67182.10"]
    assert trades[0].event_time.isoformat() == "2024-04-07T16:50:00+00:00"
    [quote] = [e for e in events if isinstance(e, PriceEvent) and e.kind == "quote"]
    assert (str(quote.bid), str(quote.ask_size)) == ("25.35190000", "40.66000000")
    reasons = sorted(DeadLetter.from_headers(r.headers).reason for r in letters)
    assert len(reasons) == 2
    assert any("not a raw envelope" in r for r in reasons)
    assert any("not valid JSON" in r for r in reasons)
    assert all(
        DeadLetter.from_headers(r.headers).origin_topic == topics.raw("binance") for r in letters
    )


async def test_offsets_committed_after_output_so_restart_does_not_reprocess_everything(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """With no open state held (dedup, candles, consolidation off) a restart resumes after the
    committed batch: the second run produces nothing new for old input."""
    async with KafkaProducer(kafka_settings) as producer:
        for i in range(5):
            payload = binance_trade("ETHUSDT", i, "3000.5", "1", T0 + i)
            await producer.send(
                topics.raw("binance"),
                raw("binance", "ethusdt@trade", payload),
                key=b"binance:ETH-USDT",
            )
    settings = settings_for(
        kafka_settings, sources=("binance",), dedup_window=0,
        candles={"enabled": False}, consolidated={"enabled": False},
    )  # fmt: skip
    async with running(settings):
        first = await read_topic(kafka_settings, topics.prices, min_records=5, timeout=20)
        await asyncio.sleep(0.5)
    async with running(settings):
        await asyncio.sleep(2.0)
    again = await read_topic(kafka_settings, topics.prices, min_records=6, timeout=2)
    assert len(first) == 5
    assert len(again) == 5


async def test_restart_rebuilds_open_candles_without_publishing_anything_twice(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Candles, consolidation and dedup on: a clean restart re-reads the open minute to rebuild
    it, publishes none of those records' events again, and the candle still has every trade."""
    key = b"binance:ETH-USDT"
    first_half = [binance_trade("ETHUSDT", i, "3000", "1", T0 + i * 1000) for i in range(20)]
    second_half = [binance_trade("ETHUSDT", 20 + i, "3010", "1", T0 + 40_000 + i * 1000)
                   for i in range(25)]  # fmt: skip
    settings = settings_for(kafka_settings, sources=("binance",))

    async def send(frames: list[str]) -> None:
        async with KafkaProducer(kafka_settings) as producer:
            for frame in frames:
                await producer.send(
                    topics.raw("binance"), raw("binance", "ethusdt@trade", frame), key=key
                )

    await send(first_half)
    async with running(settings):
        await read_topic(kafka_settings, topics.prices, min_records=20, timeout=20)
        await asyncio.sleep(0.5)
    await send(second_half)  # closes the minute at T0 + 60 s
    async with running(settings):
        candles = await read_topic(kafka_settings, topics.candles, min_records=1, timeout=20)
        await asyncio.sleep(1.0)
    prices = await read_topic(kafka_settings, topics.prices, min_records=46, timeout=3)
    ids = [json.loads(r.value)["event_id"] for r in prices]
    trades = [i for r, i in zip(prices, ids, strict=True) if b'"kind":"trade"' in r.value]
    assert len(trades) == 45 and len(set(trades)) == 45, "each trade published exactly once"
    assert len(ids) == len(set(ids)), "no event published twice"
    [candle] = [decode_event(r.value) for r in candles]
    assert candle.trade_count == 45 - 5  # type: ignore[attr-defined]  # minute 0: trades 0-39


@pytest.mark.parametrize("engine", ["aiokafka", "faust"])
async def test_module_entry_serves_health_and_stops_on_sigterm(
    kafka_settings: KafkaSettings, topics: Topics, engine: str
) -> None:
    """``python -m coinstream.normalizer`` serves /healthz, /readyz, /metrics and exits 0 on SIGTERM."""
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "KAFKA_ENABLE_IDEMPOTENCE": "false",
        "KAFKA_SESSION_TIMEOUT_MS": "2000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "NORMALIZER_HTTP__PORT": str(port),
        "NORMALIZER_HTTP__HOST": "127.0.0.1",
        "NORMALIZER_GROUP_ID": f"norm-{uuid.uuid4().hex[:8]}",
        "NORMALIZER_HEALTH_INTERVAL_S": "0.5",
        "NORMALIZER_ENGINE": engine,
    }
    async with KafkaProducer(kafka_settings) as producer:
        payload = binance_trade("BTCUSDT", 7, "1", "1", T0)
        await producer.send(
            topics.raw("binance"), raw("binance", "btcusdt@trade", payload), key=b"binance:BTC-USDT"
        )
    proc = subprocess.Popen(  # noqa: ASYNC220 - a child process the test signals
        [sys.executable, "-m", "coinstream.normalizer"], env=env, stderr=subprocess.PIPE
    )
    try:
        ready = False
        async with aiohttp.ClientSession() as http:
            for _ in range(150):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                        if resp.status == 200:
                            ready = True
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            assert ready
            prices = await read_topic(kafka_settings, topics.prices, min_records=1, timeout=20)
            assert prices and prices[0].key == b"BTC-USDT"
            text = ""
            for _ in range(50):  # counters are moved into /metrics once the batch is flushed
                async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                    text = await resp.text()
                if 'normalizer_records_total{source="binance"}' in text:
                    break
                await asyncio.sleep(0.1)
            assert 'normalizer_records_total{source="binance"} 1.0' in text
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert (await resp.json()) == {"status": "ok"}
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 20)
        assert code == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        health = await read_topic(
            kafka_settings, topics.feed_status, timeout=10,
            until=lambda rs: any(json.loads(r.value)["status"] == "stopping" for r in rs),
        )  # fmt: skip
        assert any(json.loads(r.value)["status"] == "stopping" for r in health)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


async def test_faust_engine_smoke(kafka_settings: KafkaSettings, topics: Topics) -> None:
    """The faust engine turns Binance trades into prices."""
    async with KafkaProducer(kafka_settings) as producer:
        for i in range(3):
            payload = binance_trade("BTCUSDT", 100 + i, f"6718{i}.10", "0.001", T0 + i)
            await producer.send(
                topics.raw("binance"),
                raw("binance", "btcusdt@trade", payload),
                key=b"binance:BTC-USDT",
            )
    async with running(settings_for(kafka_settings, engine="faust", sources=("binance",))):
        prices = await read_topic(kafka_settings, topics.prices, min_records=3, timeout=30)
    assert len(prices) == 3
