"""Two replicas share the topics; partitions change hands mid-stream; every notification is
delivered exactly once (the simulator's webhook receiver records what it got)."""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaSettings
from coinstream.schemas import Topics

from .alerts_helpers import price, produce, service_settings, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

RULES = """
grouping: {group_by: [alertname, symbol], group_wait: 0s, group_interval: 100ms,
           repeat_interval: 1h}
receivers:
  hook: {type: webhook, url_env: ALERTS_WEBHOOK_URL}
rules:
  - {id: usdt-above-100, type: price_threshold, symbols: ['*-USDT'], direction: above,
     threshold: 100, receivers: [hook]}
"""

SYMBOLS = [f"S{i:02d}-USDT" for i in range(24)]


def received(sim: SimServer) -> list[tuple[str, str, str]]:
    """(symbol, status, starts_at) of every alert in every webhook message, in order."""
    return [
        (a["subject"], a["status"], a["starts_at"])
        for m in sim.sim.recordings.get("webhook", [])
        for a in m["body"]["alerts"]
    ]


async def test_two_replicas_with_a_rebalance_mid_stream_deliver_each_notification_once(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str, tmp_path: Path, run_service
) -> None:
    """Replica A alone fires 24 alerts; B joins while the resolves are in flight (partitions
    and their state, groups and outbox move to B); a second round fires again and A leaves
    mid-stream (B takes everything over); B resolves them. Each receiver-visible change
    arrives exactly once: 24 FIRING and 24 RESOLVED per round, no duplicate, none missing,
    and every RESOLVED follows a FIRING of the same alert."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    async with SimServer(Market(rate=0, seed=1)) as sim:
        secrets = {"ALERTS_WEBHOOK_URL": f"{sim.base_url}/webhook/alerts"}

        def settings() -> Any:
            return service_settings(kafka_settings, rules, database_url, secrets)

        start = time.time()

        async def round_(n: int) -> None:
            value = 110 if n % 2 == 0 else 90
            t = start + n * 10
            events = [price(s, value, absolute=t + i * 0.001) for i, s in enumerate(SYMBOLS)]
            await produce(kafka_settings, topics.prices, events)

        def count(status: str) -> int:
            return sum(1 for _, st, _ in received(sim) if st == status)

        a = await run_service(settings())
        await round_(0)
        assert await wait_until(lambda: count("firing") >= 24, timeout=30), received(sim)

        b_started = asyncio.create_task(run_service(settings()))  # joins: a rebalance
        await round_(1)  # in flight while partitions change hands
        await b_started
        assert await wait_until(lambda: count("resolved") >= 24, timeout=30), received(sim)

        await round_(2)
        await asyncio.sleep(0.05)
        await a.stop()  # leaves mid-stream: B takes every partition over
        assert await wait_until(lambda: count("firing") >= 48, timeout=40), received(sim)
        await round_(3)
        assert await wait_until(lambda: count("resolved") >= 48, timeout=30), received(sim)
        await asyncio.sleep(1.0)  # anything duplicated late would arrive now

        got = received(sim)
        dupes = [k for k, n in collections.Counter(got).items() if n > 1]
        assert dupes == []
        assert count("firing") == 48 and count("resolved") == 48
        per_symbol = collections.defaultdict(list)
        for symbol, status, _ in got:
            per_symbol[symbol].append(status)
        assert set(per_symbol) == set(SYMBOLS)
        for symbol, statuses in per_symbol.items():
            assert statuses == ["firing", "resolved", "firing", "resolved"], symbol
    # the partitions really changed hands: each taken over at least twice (A, then B or A
    # again when B joined, then B when A left), and one replica took partitions from the other
    conn = await asyncpg.connect(database_url)
    try:
        epochs = {
            r["partition"]: r["epoch"]
            for r in await conn.fetch(
                "SELECT partition, epoch FROM alerts_partitions WHERE topic = $1", topics.prices
            )
        }
    finally:
        await conn.close()
    assert sorted(epochs) == [0, 1, 2] and min(epochs.values()) >= 3, epochs
