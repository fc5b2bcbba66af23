"""What the demo prints after start-up: every pointer is there, and every trigger command
works against the real simulator."""

from __future__ import annotations

import asyncio
import shlex
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from coinstream.devstack.guide import Started, guide, load_rules, trigger
from coinstream.devstack.stack import DEFAULT_RULES
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer

PRICES = {"BTC-USDT": Decimal("67000"), "ETH-USDT": Decimal("3500"), "BTC-USD": Decimal("67010")}


def _started(sim_url: str = "http://127.0.0.1:8900", local: bool = True) -> Started:
    return Started(
        bootstrap="127.0.0.1:9092",
        database_url="postgresql://postgres@127.0.0.1:5433/postgres",
        sim_url=sim_url,
        topic_prefix="coinstream",
        log_dir=Path(".devstack/logs"),
        services=[("sink-postgres", "http://127.0.0.1:8081", Path(".devstack/logs/sink.log"))],
        psql="psql",
        python=".venv/bin/python",
        example=Path("examples/consume_prices.py"),
        rules_file=Path("deploy/local/alert-rules.yaml"),
        local_broker=local,
    )


def test_the_guide_names_psql_views_a_consumer_controls_rules_and_logs() -> None:
    rules = load_rules(DEFAULT_RULES)
    text = guide(_started(), rules, PRICES, ["daily_ohlcv", "latest_prices"])
    assert (
        "psql postgresql://postgres@127.0.0.1:5433/postgres -c 'SELECT * FROM latest_prices'"
    ) in text
    assert "views: daily_ohlcv, latest_prices" in text
    assert (
        ".venv/bin/python examples/consume_prices.py --bootstrap 127.0.0.1:9092 --prefix "
        "coinstream --group look-$USER --symbol BTC-USDT --session-timeout-ms 2000"
    ) in text
    for control in (
        "/_sim/state",
        "/_sim/price",
        "/_sim/faults",
        "/_sim/diverge",
        "/_sim/assets/bitcoin",
        "/_sim/recordings/smtp",
        "/coingecko/api/v3/coins/",
    ):
        assert control in text
    assert "deploy/local/alert-rules.yaml" in text
    assert len(rules) >= 5
    for rule in rules:
        assert f"  {rule['id']}" in text
    assert "Logs: .devstack/logs/" in text and "http://127.0.0.1:8081/readyz" in text
    assert "kcat" in text


def test_no_local_broker_note_for_a_real_kafka() -> None:
    text = guide(_started(local=False), [], PRICES, [])
    assert "kcat" not in text and "--session-timeout-ms" not in text


def test_threshold_triggers_move_the_price_past_the_threshold() -> None:
    above = trigger(
        {
            "type": "price_threshold",
            "symbols": ["BTC-USDT"],
            "direction": "above",
            "threshold": 68000,
        },
        "http://sim",
        PRICES,
    )
    assert '"symbol":"BTC-USDT","price":"69020.00"' in above
    below = trigger(
        {
            "type": "price_threshold",
            "symbols": ["BTC-USDT"],
            "direction": "below",
            "threshold": 60000,
        },
        "http://sim",
        PRICES,
    )
    assert '"price":"59100.00"' in below
    move = trigger(
        {"type": "percent_change", "symbols": ["*-USDT"], "percent": 5}, "http://sim", PRICES
    )
    assert '"symbol":"ETH-USDT","price":"3710.00"' in move  # 6% up


def state(sim: SimServer) -> tuple[object, ...]:
    """What a trigger may change: faults, prices, divergences."""
    market = sim.sim.market
    prices = {s: market.price(s) for s in market.instruments}
    return dict(sim.sim.faults), prices, market.divergences()


@pytest.mark.skipif(shutil.which("curl") is None, reason="the printed commands use curl")
async def test_every_printed_trigger_works_against_the_simulator() -> None:
    """Run each rule's command as printed: the simulator accepts it and changes its state."""
    async with SimServer(Market(rate=0, seed=3)) as sim:
        prices = {s: sim.sim.market.price(s) for s in sim.sim.market.instruments}
        for rule in load_rules(DEFAULT_RULES):
            command = trigger(rule, sim.base_url, prices).split("   (")[0]
            if not command.startswith("curl "):
                continue  # a hint to wait, not a command
            before = state(sim)
            proc = await asyncio.to_thread(
                subprocess.run,
                [*shlex.split(command), "-f"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert proc.returncode == 0, (rule["id"], proc.stderr)
            after = state(sim)
            assert after != before, f"{rule['id']}: the command changed nothing"
            sim.sim.faults.clear()
            for venue in sim.sim.market.venues:
                sim.sim.market.diverge(venue, None)
