"""The local broker rolled over under the running pipeline: every trade reaches PostgreSQL
once, none is missing (Binance trade ids are contiguous per symbol)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coinstream.devstack.broker import TansuBroker
from coinstream.devstack.rollover import BrokerRoller
from coinstream.devstack.stack import ServiceProcess, StackConfig, stop_all
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaSettings, ensure_topics
from coinstream.schemas import Topics

from .test_pipeline import count_rows, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

TRADES = "FROM prices WHERE source = 'binance' AND kind = 'trade'"
MISSING = (
    "SELECT coalesce(sum(hi - lo + 1 - n), -1) FROM (SELECT symbol, count(DISTINCT trade_id) "
    f"AS n, min(trade_id::bigint) AS lo, max(trade_id::bigint) AS hi {TRADES} "
    "GROUP BY symbol) s"
)
"""Trade ids missing between the first and the newest stored trade of each symbol."""


async def test_rolling_the_broker_over_mid_stream_loses_and_duplicates_nothing(
    database_url: str, tmp_path: Path
) -> None:
    """Two roll-overs while trades flow through ingest-ws, the normalizer and the sink."""
    with TansuBroker(log_path=tmp_path / "tansu.log") as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
        await ensure_topics(kafka, Topics().specs())
        async with SimServer(Market(rate=50, seed=11)) as server:
            cfg = StackConfig(
                bootstrap=broker.bootstrap,
                database_url=database_url,
                sim_http=server.base_url,
                log_dir=tmp_path,
                ws_venues=("binance",),
                rest_sources=(),
            )
            procs = [ServiceProcess(n, cfg) for n in ("ingest-ws", "normalizer", "sink-postgres")]
            for p in procs:
                p.start()
            roller = BrokerRoller(
                broker,
                kafka,
                [p.proc.pid for p in procs if p.proc is not None],
                max_rss_mb=1,
                trim_unconsumed={kafka.topics.dlq},
            )
            try:
                stored = 0
                for _ in range(2):
                    stored = await eventually(
                        lambda: count_rows(database_url, f"SELECT count(*) {TRADES}"),
                        lambda n, at_least=stored + 500: n >= at_least,
                        90,
                        "trades in PostgreSQL",
                        procs,
                    )
                    await roller.roll()
                await eventually(
                    lambda: count_rows(database_url, f"SELECT count(*) {TRADES}"),
                    lambda n, at_least=stored + 1000: n >= at_least,
                    90,
                    "trades after the roll-overs",
                    procs,
                )
                # Each roll-over makes ingest-ws rejoin its work group, which restarts its
                # feeds: the seconds in between are a gap it backfills from the REST history.
                # Wait for that, as a user would, before counting.
                await eventually(
                    lambda: count_rows(database_url, MISSING),
                    lambda n: n == 0,
                    90,
                    "the roll-overs' gaps backfilled",
                    procs,
                )
            finally:
                codes = stop_all(procs)
        assert codes == dict.fromkeys(codes, 0), codes
    assert roller.rolls == 2
    duplicated = await count_rows(
        database_url, f"SELECT count(*) - count(DISTINCT event_id) {TRADES}"
    )
    assert duplicated == 0
    assert await count_rows(database_url, MISSING) == 0
