"""A real rename through the running stack: CoinGecko and CoinMarketCap both poll the
simulator, the asset is renamed at both; PostgreSQL keeps the richest value of every field and
exactly one new version, made by the source that owns the name."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from coinstream.devstack.stack import ServiceProcess, StackConfig, stop_all
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaSettings

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def versions(database_url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT name, description, changed_by, changed_fields, current FROM asset_versions"
            " WHERE entity_id = 'asset:bitcoin' ORDER BY valid_from"
        )
        return [dict(r) for r in rows]
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()


async def wait_for(
    probe: Any, ok: Any, timeout: float, what: str, procs: list[ServiceProcess]
) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if ok(value):
            return value
        if asyncio.get_running_loop().time() > deadline or any(not p.running for p in procs):
            logs = "\n".join(f"--- {p.name}\n{p.log_tail(15)}" for p in procs)
            pytest.fail(f"timed out waiting for {what}; last value {value!r}\n{logs}")
        await asyncio.sleep(0.5)


async def test_a_rename_is_one_version_and_no_field_is_lost(
    kafka_settings: KafkaSettings, database_url: str, tmp_path: Path
) -> None:
    async with SimServer(Market(rate=2, seed=3, aggregator_lag=0)) as server:
        cfg = StackConfig(
            bootstrap=kafka_settings.bootstrap_servers,
            database_url=database_url,
            sim_http=server.base_url,
            topic_prefix=kafka_settings.topic_prefix,
            local_broker=not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
            log_dir=tmp_path,
            rest_interval_s=1.0,
            ws_venues=(),
            rest_sources=("coingecko", "coinmarketcap"),
        )
        procs = [ServiceProcess(n, cfg) for n in ("ingest-rest", "normalizer", "sink-postgres")]
        for p in procs:
            p.start()
        try:
            [first] = await wait_for(
                lambda: versions(database_url),
                lambda v: len(v) == 1 and v[0]["description"],
                90,
                "bitcoin described in the assets table",
                procs,
            )
            await asyncio.sleep(4)  # several polls of every endpoint: still one version
            assert len(await versions(database_url)) == 1
            async with aiohttp.ClientSession() as http:
                resp = await http.post(
                    f"{server.base_url}/_sim/assets/bitcoin", json={"name": "Bitcoin Renamed"}
                )
                assert resp.status == 200, await resp.text()
            await wait_for(
                lambda: versions(database_url),
                lambda v: v[-1]["name"] == "Bitcoin Renamed",
                60,
                "the new name in the assets table",
                procs,
            )
            await asyncio.sleep(4)  # every endpoint of both sources polled again
            history = await versions(database_url)
        finally:
            codes = stop_all(procs)
        assert codes == dict.fromkeys(codes, 0), codes
    assert [(v["name"], v["current"]) for v in history] == [
        (first["name"], False),
        ("Bitcoin Renamed", True),
    ]
    assert history[1]["changed_by"] == "coingecko" and "name" in history[1]["changed_fields"]
    assert history[1]["description"] == first["description"]  # nothing known was lost
