"""Record raw envelopes to gzip JSONL and replay them into the raw topics."""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coinstream.devstack.kafkatools import read_topic
from coinstream.ingest_ws.errors import RecordingError
from coinstream.ingest_ws.recording import read_recording, record, replay
from coinstream.ingest_ws.settings import IngestWsSettings
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaSettings
from coinstream.schemas import Topics, decode_envelope


def settings_for(kafka: KafkaSettings, sim: SimServer) -> IngestWsSettings:
    return IngestWsSettings(
        kafka=kafka,
        binance={"url": f"{sim.ws_url}/binance", "symbols": ["BTC-USDT", "ETH-USDT"]},
        coinbase={"url": f"{sim.ws_url}/coinbase", "symbols": ["BTC-USD"]},
        kraken={"url": f"{sim.ws_url}/kraken/v2", "symbols": ["ETH-USD"]},
    )


async def make_recording(
    path: Path, kafka: KafkaSettings, n: int | None = 60, duration: float | None = None
) -> list[str]:
    async with SimServer(Market(rate=20, seed=41)) as sim:
        count = await record(
            settings_for(kafka, sim), path, asyncio.Event(), duration_s=duration, max_messages=n
        )
    assert count >= (n or 1)
    with gzip.open(path, "rt") as fh:
        return [line for line in fh.read().splitlines() if line]


@pytest.mark.kafka
async def test_replay_reproduces_the_recorded_envelopes_in_the_raw_topics(
    tmp_path: Path, kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Every recorded envelope comes back from the raw topics unchanged except replayed=true."""
    path = tmp_path / "session.jsonl.gz"
    lines = await make_recording(path, kafka_settings)
    recorded = [decode_envelope(line) for line in lines]
    assert {e.source for e in recorded} == {"binance", "coinbase", "kraken"}
    published = await replay(IngestWsSettings(kafka=kafka_settings), path, asyncio.Event())
    assert published == len(recorded)
    records = await read_topic(
        kafka_settings,
        [topics.raw("binance"), topics.raw("coinbase"), topics.raw("kraken")],
        min_records=len(recorded),
    )
    replayed = {
        decode_envelope(r.value).envelope_id: (r, decode_envelope(r.value)) for r in records
    }
    assert len(replayed) == len(recorded)
    for original in recorded:
        rec, env = replayed[original.envelope_id]
        assert env.replayed is True
        assert env.model_copy(update={"replayed": False}) == original
        assert rec.topic == topics.raw(original.source)
        assert rec.key is not None and rec.key.decode().startswith(f"{original.source}:")
    # per-symbol order is kept: within one key, replay order equals recorded order
    by_key: dict[bytes, list[str]] = {}
    for r in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        by_key.setdefault(r.key, []).append(decode_envelope(r.value).envelope_id)
    order = {e.envelope_id: i for i, e in enumerate(recorded)}
    for ids in by_key.values():
        assert [order[i] for i in ids] == sorted(order[i] for i in ids)


@pytest.mark.kafka
async def test_replay_at_recorded_speed_keeps_the_recorded_pacing(
    tmp_path: Path, kafka_settings: KafkaSettings
) -> None:
    """speed=2 replays a recording in about half its recorded time span (not instantly)."""
    path = tmp_path / "paced.jsonl.gz"
    lines = await make_recording(path, kafka_settings, n=None, duration=1.0)
    times = [decode_envelope(line).received_at.timestamp() for line in lines]
    span = max(times) - min(times)
    assert span > 0.5
    start = time.monotonic()
    await replay(IngestWsSettings(kafka=kafka_settings), path, asyncio.Event(), speed=2.0)
    assert time.monotonic() - start >= span / 2 * 0.9


@pytest.mark.kafka
async def test_replay_command_line(
    tmp_path: Path, kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """`python -m coinstream.ingest_ws replay --in FILE --speed max` publishes the file."""
    path = tmp_path / "cli.jsonl.gz"
    lines = await make_recording(path, kafka_settings, n=20)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "KAFKA_ENABLE_IDEMPOTENCE": "false",
        "INGEST_WS_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coinstream.ingest_ws",
        "replay",
        "--in",
        str(path),
        "--speed",
        "max",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    records = await read_topic(
        kafka_settings,
        [topics.raw("binance"), topics.raw("coinbase"), topics.raw("kraken")],
        min_records=len(lines),
    )
    assert len(records) == len(lines)
    assert all(decode_envelope(r.value).replayed for r in records)


def test_unreadable_recording_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write('{"not": "an envelope"}\n')
    with pytest.raises(RecordingError, match=r"bad.jsonl.gz:1"):
        list(read_recording(path))
    with pytest.raises(RecordingError, match="does not exist"):
        list(read_recording(tmp_path / "missing.jsonl.gz"))


def test_record_with_no_reachable_venue_exits_non_zero(tmp_path: Path) -> None:
    """Every venue's URL refuses connections: the command fails and says why, instead of
    leaving an empty recording behind an exit code 0."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"ws://127.0.0.1:{probe.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_WS_", "KAFKA_"))}
    env |= {
        "INGEST_WS_BINANCE__URL": f"{dead}/binance",
        "INGEST_WS_COINBASE__URL": f"{dead}/coinbase",
        "INGEST_WS_KRAKEN__URL": f"{dead}/kraken/v2",
    }
    out = tmp_path / "nothing.jsonl.gz"
    command = ["record", "--out", str(out), "--duration", "1.5"]
    proc = subprocess.run(
        [sys.executable, "-m", "coinstream.ingest_ws", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "nothing recorded: no venue could be reached" in proc.stderr
    assert f"binance ({dead}/binance)" in proc.stderr
