"""Completeness against the simulator's own record of every trade: after a SIGKILL or SIGTERM
restart of ingest-ws, and after live gaps, every trade the venues sent is on the raw topic
(live or backfilled from REST history), or inside a reported unrecoverable gap."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from coinstream.devstack.kafkatools import read_topic
from coinstream.devstack.stack import ServiceProcess, StackConfig
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaSettings
from coinstream.schemas import FeedStatusEvent, Topics
from support.completeness import VENUES, raw_ids, statuses, truth, unrecoverable
from support.rawtrades import Ids

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]


def ingest_ws(kafka: KafkaSettings, sim: SimServer, log_dir: Path) -> ServiceProcess:
    cfg = StackConfig(
        bootstrap=kafka.bootstrap_servers,
        database_url="postgresql://unused",
        sim_http=sim.base_url,
        topic_prefix=kafka.topic_prefix,
        local_broker=not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        log_dir=log_dir,
        rest_sources=(),
        extra_env={"ingest-ws": {"INGEST_WS_CHECKPOINT_INTERVAL_S": "0.5"}},
    )
    return ServiceProcess("ingest-ws", cfg)


async def until(probe: Any, what: str, proc: ServiceProcess, timeout: float = 45) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{proc.log_tail(40)}")
        await asyncio.sleep(0.5)


async def flowing(kafka: KafkaSettings, topics: Topics, proc: ServiceProcess) -> None:
    def every_venue(records: list[Any]) -> bool:
        return {r.topic for r in records} >= {topics.raw(v) for v in VENUES}

    records = await read_topic(
        kafka, [topics.raw(v) for v in VENUES], timeout=45, until=every_venue
    )
    if not every_venue(records):
        pytest.fail(f"no trades from every venue\n{proc.log_tail(40)}")


async def check_complete(
    market: Market, kafka: KafkaSettings, topics: Topics, proc: ServiceProcess
) -> tuple[Ids, list[FeedStatusEvent]]:
    """Pause the market, then: every trade sent is on Kafka or in an unrecoverable gap."""
    market.pause()
    await asyncio.sleep(2.5)  # the last frames, a last gap check, a last backfill
    proc.signal(signal.SIGTERM)
    assert proc.stop(timeout=20) == 0, proc.log_tail(40)
    seen = await raw_ids(kafka, topics)
    events = await statuses(kafka, topics)
    lost = unrecoverable(events)
    missing = {
        k: sorted(ids - seen.get(k, set()) - lost.get(k, set()))[:10]
        for k, ids in truth(market, seen).items()
    }
    assert missing == {k: [] for k in missing}, (missing, proc.log_tail(40))
    return seen, events


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
async def test_a_restart_loses_no_trade_silently(
    kafka_settings: KafkaSettings, topics: Topics, tmp_path: Path, sig: signal.Signals
) -> None:
    """Killed or stopped for 5 s (longer than the venues' 50-trade snapshots): the restarted
    process finds where every stream left off, reports the gap and backfills it."""
    market = Market(rate=15, seed=41)
    async with SimServer(market) as sim:
        proc = ingest_ws(kafka_settings, sim, tmp_path)
        proc.start()
        await flowing(kafka_settings, topics, proc)
        await asyncio.sleep(1.5)  # a checkpoint or two
        proc.signal(sig)
        proc.stop(timeout=20)
        await asyncio.sleep(5)
        proc.start()
        restarted = time.monotonic()

        async def filled() -> list[FeedStatusEvent]:
            events = await statuses(kafka_settings, topics)
            done = {e.source for e in events if e.status == "gap_filled"}
            return events if done >= set(VENUES) else []

        await until(filled, "gap_filled from every venue", proc)
        refilled_s = time.monotonic() - restarted
        _, events = await check_complete(market, kafka_settings, topics, proc)
    gaps = [e for e in events if e.status == "gap" and e.details.get("backfill") == "queued"]
    for venue in VENUES:  # the figures (pytest -s): per venue, what the outage cost
        filled = [e.details for e in events if e.status == "gap_filled" and e.source == venue]
        print(
            f"{sig.name} {venue}: missed "
            f"{sum(int(d['last_missing']) - int(d['first_missing']) + 1 for d in filled)} trades "
            f"in {len(filled)} gap(s), backfilled {sum(int(d['recovered']) for d in filled)}, "
            f"backfill took {max((float(d['seconds']) for d in filled), default=0):.2f} s "
            f"({sum(int(d['requests']) for d in filled)} requests); every venue filled "
            f"{refilled_s:.1f} s after the restart"
        )
    assert {e.source for e in gaps} == set(VENUES)
    assert all(e.window_start and e.window_end for e in gaps)
    assert not [e for e in events if e.status == "gap_unrecoverable"]


async def test_rate_limits_are_waited_out_and_missing_history_is_reported(
    kafka_settings: KafkaSettings, topics: Topics, tmp_path: Path
) -> None:
    """Binance answers 429 (Retry-After 1 s) twice: the backfill waits and completes. Kraken
    keeps only its last 5 trades: the older part of its gap is reported unrecoverable."""
    market = Market(rate=15, seed=42)
    async with SimServer(market) as sim:
        proc = ingest_ws(kafka_settings, sim, tmp_path)
        proc.start()
        await flowing(kafka_settings, topics, proc)
        await asyncio.sleep(1.5)
        proc.stop(kill=True)
        await asyncio.sleep(5)
        sim.sim.faults["binance.faults"] = [{"kind": "rate_limit", "retry_after": 1, "count": 2}]
        sim.sim.faults["kraken.history_keep"] = 5
        proc.start()

        async def reported() -> list[FeedStatusEvent]:
            events = await statuses(kafka_settings, topics)
            ok = {e.source for e in events if e.status == "gap_filled"}
            bad = {e.source for e in events if e.status == "gap_unrecoverable"}
            return events if {"binance", "coinbase"} <= ok and "kraken" in bad else []

        await until(reported, "binance filled after 429s and kraken unrecoverable", proc)
        _, events = await check_complete(market, kafka_settings, topics, proc)
    requests = sim.sim.recordings.get("binance.requests", [])
    assert len(requests) >= 3  # two answered 429, then served
    assert any(e.status == "rate_limited" and e.source == "binance" for e in events)
    [lost] = [e for e in events if e.status == "gap_unrecoverable" and e.source == "kraken"][:1]
    assert "no longer holds" in lost.details["reason"]  # type: ignore[operator]
    assert lost.details["unrecovered"] > 0  # type: ignore[operator]


async def test_live_gaps_are_backfilled(
    kafka_settings: KafkaSettings, topics: Topics, tmp_path: Path
) -> None:
    """Frames the venues never sent (the simulator's gap fault) are fetched from REST."""
    market = Market(rate=15, seed=43)
    async with SimServer(market) as sim:
        proc = ingest_ws(kafka_settings, sim, tmp_path)
        proc.start()
        await flowing(kafka_settings, topics, proc)
        for venue in ("binance", "kraken"):
            sim.sim.faults[f"{venue}.gap"] = 4

        async def filled() -> list[FeedStatusEvent]:
            events = await statuses(kafka_settings, topics)
            done = {e.source for e in events if e.status == "gap_filled"}
            return events if {"binance", "kraken"} <= done else []

        await until(filled, "live gaps filled", proc)
        await check_complete(market, kafka_settings, topics, proc)
