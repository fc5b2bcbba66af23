"""A venue added from outside Coinstream: installed, not edited in.

``outside_plugin/`` is a separate package (``examplex-venue``) with one entry point in each
plugin group: an ingest-ws venue, a normalizer parser that declares venue trades, and a
simulator route. The test builds and installs it with pip into a directory of its own, then
runs the simulator, ingest-ws and the normalizer with that directory on their path (the
services as processes, configured by environment variables only). The examplex trades must
come out of the normalizer as prices, 1-minute-style candles and consolidated prices, which
is what only the built-in exchanges got before the plugin contract existed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coinstream.devstack.kafkatools import read_topic
from coinstream.devstack.stack import ServiceProcess, StackConfig, stop_all
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaSettings
from coinstream.schemas import CandleEvent, PriceEvent, Topics, decode_event

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

PACKAGE = Path(__file__).parent / "outside_plugin"


def install(tmp_path: Path) -> Path:
    """pip-install the plugin package (offline, no dependencies) into ``tmp_path/site``."""
    source = tmp_path / "examplex-venue"
    shutil.copytree(PACKAGE, source)
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
         "--no-build-isolation", "--target", str(site), str(source)],
        check=True,
        timeout=180,
    )  # fmt: skip
    assert (site / "examplex_venue" / "ingest.py").exists()
    return site


def events_of(records: list[Any]) -> list[Any]:
    return [decode_event(r.value) for r in records]


@pytest.fixture
def forget_plugin() -> Any:
    """The plugin's modules leave this process with the test (a rerun imports afresh)."""
    yield
    for name in [m for m in sys.modules if m.split(".")[0] == "examplex_venue"]:
        del sys.modules[name]


async def test_a_venue_installed_from_outside_gets_candles_and_consolidated_prices(
    kafka_settings: KafkaSettings,
    topics: Topics,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    forget_plugin: None,
) -> None:
    site = install(tmp_path)
    with pytest.raises(ImportError):
        __import__("examplex_venue")  # only the installed directory provides it
    monkeypatch.syspath_prepend(str(site))  # the simulator runs in this process
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    async with SimServer(Market(rate=20, seed=3)) as server:
        assert "examplex" not in server.sim.plugin_errors
        cfg = StackConfig(
            bootstrap=kafka_settings.bootstrap_servers,
            database_url="postgresql://unused",
            sim_http=server.base_url,
            topic_prefix=kafka_settings.topic_prefix,
            local_broker=not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
            log_dir=tmp_path,
            ws_venues=(),  # every built-in venue off: only the plugin runs
            rest_sources=(),
            extra_env={
                "ingest-ws": {
                    "PYTHONPATH": path,
                    "INGEST_WS_EXAMPLEX__URL": f"{server.ws_url}/examplex/ws",
                    "INGEST_WS_EXAMPLEX__SYMBOLS": json.dumps(["ETH-USD", "BTC-USD"]),
                },
                "normalizer": {
                    "PYTHONPATH": path,
                    "NORMALIZER_SOURCES": json.dumps(["examplex"]),
                    "NORMALIZER_CANDLES__INTERVAL_S": "2",
                    "NORMALIZER_CANDLES__GRACE_S": "0.5",
                },
                "consolidator": {
                    "NORMALIZER_CONSOLIDATED__INTERVAL_S": "1",
                    "NORMALIZER_CONSOLIDATED__WINDOW_S": "2",
                    "NORMALIZER_CONSOLIDATED__GRACE_S": "0.5",
                },
            },
        )
        procs = [ServiceProcess(name, cfg) for name in ("ingest-ws", "normalizer", "consolidator")]
        for p in procs:
            p.start()
        try:
            candles = await read_topic(
                kafka_settings,
                topics.candles,
                timeout=90,
                until=lambda rs: {e.symbol for e in events_of(rs)} >= {"ETH-USD", "BTC-USD"},
            )
            prices = await read_topic(
                kafka_settings,
                topics.prices,
                timeout=60,
                until=lambda rs: any(
                    isinstance(e, PriceEvent) and e.kind == "consolidated" for e in events_of(rs)
                ),
            )
        finally:
            codes = stop_all(procs)
            logs = {p.name: p.log_tail(15) for p in procs}
    assert codes == dict.fromkeys(codes, 0), (codes, logs)

    raw = await read_topic(kafka_settings, topics.raw("examplex"), min_records=1, timeout=10)
    assert raw, "ingest-ws published nothing on the plugin's raw topic"
    built = [e for e in events_of(candles) if isinstance(e, CandleEvent)]
    assert {(c.venue, c.source) for c in built} == {("examplex", "coinstream")}
    assert all(c.trade_count > 0 and c.volume > 0 for c in built)
    trades = [e for e in events_of(prices) if isinstance(e, PriceEvent) and e.kind == "trade"]
    assert trades and {t.source for t in trades} == {"examplex"}
    assert {t.asset_id for t in trades} >= {"ethereum"}
    consolidated = [
        e for e in events_of(prices) if isinstance(e, PriceEvent) and e.kind == "consolidated"
    ]
    assert consolidated and all(
        c.contributors and all(v.startswith("examplex:") for v in c.contributors)
        for c in consolidated
    )
    assert server.sim.recordings["examplex.subscribe"][0]["pairs"] == ["eth_usd", "btc_usd"]
