"""``python -m coinstream.alerts`` as a process: refuses bad config, reloads on SIGHUP,
delivers, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from coinstream.devstack.ports import free_port
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaSettings
from coinstream.schemas import Topics

from .alerts_helpers import price, produce, wait_until

RULES = """
grouping: {group_wait: 0s}
receivers:
  slack: {type: slack_webhook, url_env: ALERTS_SLACK_WEBHOOK_URL}
rules:
  - {id: btc-above-68k, type: price_threshold, symbols: [BTC-USDT], direction: above,
     threshold: 68000, receivers: [slack]}
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALERTS_", "KAFKA_"))}
    env.pop("DATABASE_URL", None)
    env.update(extra)
    return env


def _spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "coinstream.alerts"], env=env, stdout=out, stderr=out
        )


def test_bad_rules_file_refuses_to_start_naming_rule_and_field(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("direction: above", "direction: up"))
    proc = subprocess.run(
        [sys.executable, "-m", "coinstream.alerts"],
        env=_env(ALERTS_RULES_FILE=str(rules), ALERTS_SLACK_WEBHOOK_URL="http://x/y"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "rule 'btc-above-68k' (rules[0]) field 'direction'" in proc.stderr


def test_missing_receiver_secret_refuses_to_start(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    proc = subprocess.run(
        [sys.executable, "-m", "coinstream.alerts"],
        env=_env(ALERTS_RULES_FILE=str(rules)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "ALERTS_SLACK_WEBHOOK_URL" in proc.stderr


@pytest.mark.kafka
@pytest.mark.postgres
async def test_process_delivers_reloads_on_sighup_and_stops_on_sigterm(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    port = free_port()
    log = tmp_path / "alerts.log"
    async with SimServer(Market(rate=0, seed=1)) as sim:
        hook = f"{sim.base_url}/slack/webhook/T0/B0/verysecretpath"
        env = _env(
            KAFKA_BOOTSTRAP_SERVERS=kafka_settings.bootstrap_servers,
            KAFKA_TOPIC_PREFIX=kafka_settings.topic_prefix,
            KAFKA_ENABLE_IDEMPOTENCE=str(kafka_settings.enable_idempotence).lower(),
            KAFKA_SESSION_TIMEOUT_MS="2000",
            KAFKA_HEARTBEAT_INTERVAL_MS="500",
            ALERTS_HTTP__PORT=str(port),
            ALERTS_RULES_FILE=str(rules),
            ALERTS_DATABASE_URL=database_url,
            ALERTS_SLACK_WEBHOOK_URL=hook,
            ALERTS_HEALTH_INTERVAL_S="1",
        )
        proc = _spawn(env, log)
        try:

            async def ready() -> bool:
                try:
                    async with aiohttp.ClientSession() as http:
                        async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                            return r.status == 200
                except aiohttp.ClientError:
                    return False

            assert await wait_until(ready, timeout=30), log.read_text()[-2000:]
            rules.write_text("rules: [oops")
            proc.send_signal(signal.SIGHUP)
            assert await wait_until(lambda: "rules reload failed" in log.read_text(), timeout=10)
            assert proc.poll() is None
            await produce(
                kafka_settings, topics.prices, [price("BTC-USDT", 69000, absolute=time.time())]
            )
            posts = await wait_until(lambda: sim.sim.recordings.get("slack"), timeout=15)
            assert posts and "btc-above-68k" in posts[0]["body"]["text"]
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, 15)
            assert proc.returncode == 0, log.read_text()[-2000:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text()
    assert "stopped cleanly" in text
    assert "verysecretpath" not in text  # secrets never logged (httpx request logs too)
