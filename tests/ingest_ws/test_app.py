"""The service end to end: simulator -> ingest-ws -> real broker, health endpoints, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from coinstream.devstack.kafkatools import read_topic
from coinstream.ingest_ws import app
from coinstream.ingest_ws.settings import IngestWsSettings
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import HttpSettings, KafkaSettings
from coinstream.schemas import Topics, decode_envelope

pytestmark = pytest.mark.kafka


def service_settings(
    kafka: KafkaSettings, sim: SimServer, **venues: dict[str, object]
) -> IngestWsSettings:
    fast = {"ping_interval_s": 1.0, "ping_timeout_s": 1.0, "backoff_initial_s": 0.05}
    return IngestWsSettings(
        kafka=kafka,
        http=HttpSettings(host="127.0.0.1", port=0),
        health_interval_s=0.5,
        shutdown_timeout_s=5,
        binance={
            "url": f"{sim.ws_url}/binance",
            "symbols": ["BTC-USDT", "ETH-USDT"],
            **fast,
            **venues.get("binance", {}),
        },
        coinbase={
            "enabled": False,
            "url": f"{sim.ws_url}/coinbase",
            **fast,
            **venues.get("coinbase", {}),
        },
        kraken={
            "enabled": False,
            "url": f"{sim.ws_url}/kraken/v2",
            **fast,
            **venues.get("kraken", {}),
        },
    )


@contextlib.asynccontextmanager
async def running(settings: IngestWsSettings) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(app.main(settings, stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_binance_frames_land_verbatim_in_the_raw_topic(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Each Binance combined-stream frame is published verbatim, keyed binance:SYMBOL."""
    async with SimServer(Market(rate=20, seed=11)) as sim:
        settings = service_settings(kafka_settings, sim)
        async with running(settings):
            records = await read_topic(
                kafka_settings,
                topics.raw("binance"),
                timeout=20,
                until=lambda recs: (
                    {r.key for r in recs} >= {b"binance:BTC-USDT", b"binance:ETH-USDT"}
                    and len(recs) >= 20
                ),
            )
    assert len(records) >= 20
    channels = set()
    for rec in records:
        env = decode_envelope(rec.value)
        frame = json.loads(env.payload)
        assert env.source == "binance" and env.channel == frame["stream"]
        assert env.connection_id and not env.replayed
        symbol = frame["data"]["s"]
        assert rec.key == {"BTCUSDT": b"binance:BTC-USDT", "ETHUSDT": b"binance:ETH-USDT"}[symbol]
        channels.add(env.channel.split("@")[1])
    assert channels == {"trade", "bookTicker"}


async def test_process_serves_health_and_metrics_and_stops_cleanly_on_sigterm(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """`python -m coinstream.ingest_ws` from env vars: ready, metrics, exit 0 on SIGTERM."""
    import os
    import signal
    import sys

    from coinstream.devstack.ports import free_port

    port = free_port()
    async with SimServer(Market(rate=20, seed=12)) as sim:
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
            "KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
            "KAFKA_ENABLE_IDEMPOTENCE": "false",
            "INGEST_WS_HTTP__PORT": str(port),
            "INGEST_WS_HTTP__HOST": "127.0.0.1",
            "INGEST_WS_BINANCE__URL": f"{sim.ws_url}/binance",
            "INGEST_WS_BINANCE__SYMBOLS": '["BTC-USDT"]',
            "INGEST_WS_BINANCE__CHANNELS": '["trade","bookTicker"]',
            "INGEST_WS_COINBASE__ENABLED": "false",
            "INGEST_WS_KRAKEN__ENABLED": "false",
            "INGEST_WS_LOG_LEVEL": "WARNING",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "coinstream.ingest_ws",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            ready = None
            async with aiohttp.ClientSession() as http:
                for _ in range(150):
                    await asyncio.sleep(0.1)
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                            if r.status == 200:
                                ready = await r.json()
                                break
                    except aiohttp.ClientError:
                        continue
                assert ready is not None, "service never became ready"
                assert "binance 1/1" in ready["checks"]["feeds"]
                await asyncio.sleep(0.5)
                async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                    text = await r.text()
                assert 'ingest_ws_messages_total{kind="data",venue="binance"}' in text
                assert 'ingest_ws_connection_state{shard="0",venue="binance"} 3.0' in text
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 15)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
        assert code == 0, stderr[-2000:]
    records = await read_topic(kafka_settings, topics.raw("binance"), min_records=5, timeout=10)
    assert {r.key for r in records} == {b"binance:BTC-USDT"}


async def test_all_three_venues_publish_to_their_raw_topics(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Binance, Coinbase and Kraken frames each land in their own raw topic, keyed by symbol."""
    async with SimServer(Market(rate=10, seed=13)) as sim:
        settings = service_settings(
            kafka_settings,
            sim,
            binance={"channels": ["trade", "aggTrade", "bookTicker", "ticker", "kline_1m"]},
            coinbase={"enabled": True, "symbols": ["BTC-USD", "ETH-USD"]},
            kraken={"enabled": True, "symbols": ["BTC-USD", "ETH-USD"]},
        )

        def complete(recs: list) -> bool:
            chans = {(r.topic, decode_envelope(r.value).channel) for r in recs}
            needed = {
                (topics.raw("binance"), "btcusdt@ticker"),
                (topics.raw("binance"), "btcusdt@kline_1m"),
                (topics.raw("binance"), "btcusdt@aggTrade"),
                (topics.raw("coinbase"), "ticker"),
                (topics.raw("coinbase"), "market_trades"),
                (topics.raw("coinbase"), "heartbeats"),
                (topics.raw("coinbase"), "subscriptions"),
                (topics.raw("kraken"), "ticker"),
                (topics.raw("kraken"), "trade"),
                (topics.raw("kraken"), "status"),
            }
            return needed <= chans

        async with running(settings):
            records = await read_topic(
                kafka_settings,
                [topics.raw("binance"), topics.raw("coinbase"), topics.raw("kraken")],
                timeout=20,
                until=complete,
            )
    assert complete(records)
    keys = {(r.topic, r.key) for r in records}
    assert (topics.raw("coinbase"), b"coinbase:BTC-USD") in keys
    assert (topics.raw("kraken"), b"kraken:ETH-USD") in keys
    for rec in records:
        env = decode_envelope(rec.value)
        frame = json.loads(env.payload)
        if env.source == "coinbase":
            assert frame["channel"] == env.channel
            if env.channel == "ticker":
                product = frame["events"][0]["tickers"][0]["product_id"]
                assert rec.key == f"coinbase:{product}".encode()
        if env.source == "kraken" and env.channel == "trade" and frame["data"]:
            assert rec.key == f"kraken:{frame['data'][0]['symbol'].replace('/', '-')}".encode()
