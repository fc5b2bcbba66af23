"""``make demo``'s command against servers that already run: it must use them, start no broker
or database of its own, fill the prices table and deliver the demo alert; and what it leaves
behind is data a subscriber can trust (``trust_checks``)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import pytest

from coinstream.devstack.kafkatools import read_topic
from coinstream.runtime import KafkaSettings
from coinstream.schemas import Topics

from . import trust_checks

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def test_demo_uses_given_servers_and_delivers_an_alert(
    kafka_settings: KafkaSettings, topics: Topics, database_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "DATABASE_URL": database_url,
        "DEMO_DURATION": "40",  # the push at 15 s, then time for aggregators to follow
        "DEMO_STATE_DIR": str(tmp_path),
        "DEMO_SUMMARY_INTERVAL": "3",
    }
    if not kafka_settings.enable_idempotence:  # the local Tansu broker
        env |= {
            "KAFKA_ENABLE_IDEMPOTENCE": "false",
            "KAFKA_SESSION_TIMEOUT_MS": "2000",
            "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coinstream.devstack",
        "demo",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    text = out.decode()
    assert proc.returncode == 0, text[-3000:]
    assert "no broker started" in text and "no server started" in text
    assert "Tansu" not in text and "embedded server" not in text
    assert not (tmp_path / "pgdata").exists()
    final = text.split("Final summary:")[-1]
    assert "slack=" in final, text[-3000:]
    for name in (
        "ingest-ws",
        "ingest-rest",
        "normalizer",
        "consolidator",
        "sink-postgres",
        "alerts",
    ):
        assert f"  {name}: exit code 0" in text
    # the streaming aggregators: records on their raw topics, shown in the summary
    assert "raw.coingecko-ws=" in final and "raw.coinmarketcap-ws=" in final, final

    conn = await asyncpg.connect(database_url)
    try:
        prices = await conn.fetchval("SELECT count(*) FROM prices")
        sentiment = await conn.fetchval("SELECT count(*) FROM sentiment")
        by_source = {
            (r["source"], r["kind"]): r["n"]
            for r in await conn.fetch(
                "SELECT source, kind, count(*) AS n FROM prices "
                "WHERE source IN ('coingecko-ws', 'coinmarketcap-ws') GROUP BY 1, 2"
            )
        }
        onchain_candles = await conn.fetchval(
            "SELECT count(*) FROM candles WHERE venue LIKE 'coingecko-ws@%'"
        )
    finally:
        await conn.close()
    assert prices > 0 and sentiment > 0

    # their prices in PostgreSQL: aggregate prices and DEX swaps from both, on-chain candles
    assert set(by_source) == {
        ("coingecko-ws", "aggregate"),
        ("coingecko-ws", "trade"),
        ("coinmarketcap-ws", "aggregate"),
        ("coinmarketcap-ws", "trade"),
    }, by_source
    assert onchain_candles > 0
    # and nothing they sent was dead-lettered by the normalizer
    letters = await read_topic(
        kafka_settings, Topics(kafka_settings.topic_prefix).dlq, min_records=10**9, idle_s=2
    )
    origins = [dict(r.headers).get("dlq.origin.topic", b"").decode() for r in letters]
    assert not [o for o in origins if "-ws." in o], origins

    # Trustworthy data: every record validates against the exported JSON Schema (checked by
    # a third-party validator), each asset a source described has a current description, no
    # version flip-flops, the sources' latest BTC prices agree within 1 %, no shared keys.
    records = await trust_checks.canonical_records(kafka_settings, topics)
    types = {doc.get("type") for _, doc in records}
    assert {"price", "metadata", "sentiment"} <= types, types
    assert trust_checks.schema_violations(records)[:10] == []
    assert trust_checks.shared_keys(records) == {}
    described = trust_checks.described(records)
    assert described, "no source described an asset"
    problems = await trust_checks.table_problems(database_url, described)
    assert problems == [], "\n".join(problems)
