"""``make demo``: the whole pipeline on this machine, with a live one-line summary.

Starts (unless given) a Tansu broker and an embedded PostgreSQL, the market simulator, and the
five services as separate processes. ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` select
servers that already run (nothing of ours is started for them). ``DEMO_DURATION=N`` stops after
N seconds. Ctrl-C or SIGTERM stops everything cleanly. The local broker is rolled over to a
fresh process whenever its memory passes ``DEMO_BROKER_MAX_MB`` (default 1024; 0 never),
keeping every record a consumer still needs at its offset (``rollover``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx

from coinstream.devstack.broker import TansuBroker
from coinstream.devstack.guide import Started, guide, load_rules
from coinstream.devstack.postgres import LocalPostgres, psql_command
from coinstream.devstack.rollover import BrokerRoller
from coinstream.devstack.stack import (
    REPO_ROOT,
    SERVICES,
    ServiceProcess,
    SimulatorProcess,
    StackConfig,
    stop_all,
)
from coinstream.devstack.summary import (
    TopicCounter,
    fired_alerts,
    format_line,
    table_counts,
    view_names,
    webhook_deliveries,
)
from coinstream.runtime.kafka import ensure_topics
from coinstream.runtime.settings import KafkaSettings
from coinstream.schemas import Topics

DEFAULT_BROKER_MAX_MB = 1024.0
"""Tansu's RSS at which the demo rolls it over (about five hours at the demo's rates)."""


def _say(text: str) -> None:
    print(text, flush=True)


async def _push_price(sim_http: str, symbol: str, price: str) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        await http.post(f"{sim_http}/_sim/price", json={"symbol": symbol, "price": price})


def _short_path(path: Path | str) -> str:
    """``path`` relative to the working directory when it is inside it (shorter to copy)."""
    try:
        return str(Path(path).absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


async def _ready(url: str, timeout: float) -> bool:
    """Wait until ``url`` answers 200 (a service's /readyz), at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(url)).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    return False


async def _prices(sim_http: str) -> dict[str, Decimal]:
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            state = (await http.get(f"{sim_http}/_sim/state")).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return {k: Decimal(v) for k, v in state.get("prices", {}).items()}


async def _print_guide(
    cfg: StackConfig, procs: list[ServiceProcess], sim: SimulatorProcess, log_dir: Path
) -> None:
    """Where to look, once sink-postgres has migrated (so its views exist)."""
    sink = next((p for p in procs if p.name == "sink-postgres"), None)
    if sink is not None:
        await _ready(f"{sink.health_url}/readyz", timeout=20)
    started = Started(
        bootstrap=cfg.bootstrap,
        database_url=cfg.database_url,
        sim_url=sim.base_url,
        topic_prefix=cfg.topic_prefix,
        log_dir=Path(_short_path(log_dir)),
        services=[
            (p.name, p.health_url, Path(_short_path(p.log_path)) if p.log_path else None)
            for p in procs
        ],
        psql=_short_path(psql_command()),
        python=_short_path(sys.executable),
        example=Path(_short_path(REPO_ROOT / "examples" / "consume_prices.py")),
        rules_file=Path(_short_path(cfg.rules_file)),
        local_broker=cfg.local_broker,
        sim_smtp=f"127.0.0.1:{sim.smtp_port}",
    )
    text = guide(
        started,
        load_rules(cfg.rules_file),
        await _prices(sim.base_url),
        await view_names(cfg.database_url),
    )
    _say(text)


async def run_demo() -> int:
    state_dir = Path(os.environ.get("DEMO_STATE_DIR", REPO_ROOT / ".devstack"))
    log_dir = state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    duration = float(os.environ["DEMO_DURATION"]) if os.environ.get("DEMO_DURATION") else None
    broker_max_mb = float(os.environ.get("DEMO_BROKER_MAX_MB") or DEFAULT_BROKER_MAX_MB)
    interval = float(os.environ.get("DEMO_SUMMARY_INTERVAL", "5"))
    prefix = os.environ.get("KAFKA_TOPIC_PREFIX", "coinstream")
    external_kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    external_db = os.environ.get("DATABASE_URL")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    broker: TansuBroker | None = None
    pg: LocalPostgres | None = None
    sim: SimulatorProcess | None = None
    procs: list[ServiceProcess] = []
    counter: TopicCounter | None = None
    exit_code = 0
    try:
        if external_kafka:
            bootstrap = external_kafka
            _say(f"Kafka: using {bootstrap} (KAFKA_BOOTSTRAP_SERVERS); no broker started")
        else:
            broker = TansuBroker(log_path=log_dir / "tansu.log")
            broker.start()
            bootstrap = broker.bootstrap
            _say(f"Kafka: started local Tansu broker, bootstrap {bootstrap}")
        if external_db:
            database_url = external_db
            _say("PostgreSQL: using DATABASE_URL; no server started")
        else:
            # A fresh database each run: the local broker keeps topics in memory, so data (and
            # alert state, consumer offsets) from an earlier run would not match its topics.
            shutil.rmtree(state_dir / "pgdata", ignore_errors=True)
            pg = LocalPostgres(state_dir / "pgdata")
            pg.start()
            database_url = pg.dsn
            _say(f"PostgreSQL: started embedded server, DSN {database_url}")

        kafka = KafkaSettings(
            bootstrap_servers=bootstrap,
            topic_prefix=prefix,
            enable_idempotence=bool(external_kafka),
        )
        await ensure_topics(kafka, Topics(prefix).specs())
        sim = SimulatorProcess(log_path=log_dir / "market-sim.log")
        sim.start()
        _say(
            f"Simulator: {sim.base_url} (Binance, Coinbase, Kraken, CoinGecko, CMC, DEX, F&G, Slack)"
            f", SMTP receiver 127.0.0.1:{sim.smtp_port} (ALERTS_SMTP__HOST/PORT)"
        )

        cfg = StackConfig(
            bootstrap=bootstrap,
            database_url=database_url,
            sim_http=sim.base_url,
            sim_smtp_port=sim.smtp_port,
            topic_prefix=prefix,
            local_broker=not external_kafka,
            log_dir=log_dir,
        )
        for name in SERVICES:
            proc = ServiceProcess(name, cfg)
            proc.start()
            procs.append(proc)
            _say(
                f"Service {name}: pid {proc.proc.pid if proc.proc else '?'}, "
                f"health {proc.health_url}/readyz, log {proc.log_path}"
            )
        await _print_guide(cfg, procs, sim, log_dir)
        _say("Ctrl-C stops everything." + (f" Stopping after {duration:.0f}s." if duration else ""))

        topics = Topics(prefix)
        counter = TopicCounter(kafka, [*topics.all_raw(), *topics.canonical(), topics.dlq])
        await counter.start()
        roller = None
        if broker is not None and broker_max_mb > 0:
            roller = BrokerRoller(
                broker,
                kafka,
                lambda: [p.proc.pid for p in procs if p.proc is not None and p.running],
                max_rss_mb=broker_max_mb,
                trim_unconsumed={topics.dlq},
            )
        started = time.monotonic()
        pushed = False
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            elapsed = time.monotonic() - started
            if roller is not None and (report := await roller.check()) is not None:
                _say(f"Kafka: {report}")
            if not pushed and elapsed >= 15:
                # Move BTC-USDT across the demo rule's 68000 threshold so an alert fires.
                await _push_price(sim.base_url, "BTC-USDT", "69000")
                _say("Simulator: BTC-USDT pushed to 69000 (crosses the demo alert threshold)")
                pushed = True
            tables = await table_counts(database_url)
            fired = await fired_alerts(database_url)
            alerts = await webhook_deliveries(sim.base_url)
            _say(format_line(elapsed, counter.counts, tables, fired, alerts, prefix))
            for p in procs:
                if not p.running:
                    _say(
                        f"!! {p.name} exited with code {p.proc.returncode if p.proc else '?'}; "
                        f"last log lines:\n{p.log_tail(15)}"
                    )
                    exit_code = 1
            if exit_code or (duration is not None and elapsed >= duration):
                break
    finally:
        _say("Stopping services (SIGTERM)...")
        codes = stop_all(procs)
        for name, code in codes.items():
            _say(f"  {name}: exit code {code}")
            if code not in (0, None):
                exit_code = 1
        if counter is not None:
            await asyncio.sleep(1.0)  # let the counter see the last flushed records
            await counter.aclose()
        if procs:
            tables = await table_counts(database_url)
            fired = await fired_alerts(database_url)
            alerts = await webhook_deliveries(sim.base_url) if sim else {}
            _say("Final summary:")
            _say(
                format_line(
                    time.monotonic() - started if counter else 0.0,
                    counter.counts if counter else Counter(),
                    tables,
                    fired,
                    alerts,
                    prefix,
                )
            )
        if sim is not None:
            sim.stop()
        if pg is not None:
            pg.stop()
        if broker is not None:
            broker.stop()
    return exit_code


def main() -> int:
    return asyncio.run(run_demo())


if __name__ == "__main__":
    sys.exit(main())
