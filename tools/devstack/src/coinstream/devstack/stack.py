"""Launching the five services as separate processes with one consistent configuration.

Used by ``make demo`` and by the end-to-end tests, so both run exactly the same way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from coinstream.devstack.ports import free_port

SERVICES: dict[str, str] = {
    "ingest-ws": "coinstream.ingest_ws",
    "ingest-rest": "coinstream.ingest_rest",
    "normalizer": "coinstream.normalizer",
    "consolidator": "coinstream.normalizer",  # the same package in its consolidate role
    "sink-postgres": "coinstream.sink_postgres",
    "alerts": "coinstream.alerts",
}
ENV_PREFIX: dict[str, str] = {
    "ingest-ws": "INGEST_WS_",
    "ingest-rest": "INGEST_REST_",
    "normalizer": "NORMALIZER_",
    "consolidator": "NORMALIZER_",
    "sink-postgres": "SINK_POSTGRES_",
    "alerts": "ALERTS_",
}
LOCAL_FETCH_MAX_WAIT_MS = 50
"""Consumers' fetch wait on the local broker: it waits this long even when records arrive
(so it is latency on every hop), and answers empty when finding the records takes longer
(at 10 ms, every fetch of older offsets of a 1 GB log; at 50 ms none)."""
REPO_ROOT = Path(__file__).resolve().parents[5]
DEFAULT_RULES = REPO_ROOT / "deploy" / "local" / "alert-rules.yaml"
DEMO_SYMBOLS = {
    "binance": ["BTC-USDT", "ETH-USDT", "SOL-USDT", "PEPE-USDT"],
    "coinbase": ["BTC-USD", "ETH-USD"],
    "kraken": ["BTC-USD", "ETH-USD"],
}
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
PEPE = "0x6982508145454ce325ddbe47a25d4ec3d2311933"
WSOL = "So11111111111111111111111111111111111111112"
DEMO_AGGREGATORS: dict[str, dict[str, object]] = {
    # CoinGecko WebSocket: coins, tokens (network:address) and pools the simulator knows
    "coingecko-ws": {
        "URL": "/coingecko-ws/v1",
        "COIN_IDS": ["bitcoin", "ethereum", "solana", "pepe"],
        "TOKENS": [f"eth:{WETH}", f"eth:{PEPE}", f"solana:{WSOL}"],
        "POOLS": [
            "eth:0xa43fe16908251ee70ef74718545e4fe6c5ccec9f",
            "eth:0x11b815efb8f581194ae79006d24e0d814b7697f6",
            "solana:58oQChx4yWmvKdwLLZzBi4ChoCc2fqCUWBkwMihLYQo2",
        ],
        "OHLCV_INTERVALS": ["1m"],
    },
    # CoinMarketCap WebSocket: CMC ids and platform_id:address tokens (1 Ethereum, 16 Solana)
    "coinmarketcap-ws": {
        "URL": "/coinmarketcap-ws/v1",
        "CRYPTO_IDS": [1, 1027, 5426, 24478],
        "TOKENS": [f"1:{PEPE}", f"1:{WETH}", f"16:{WSOL}"],
        "KLINE_INTERVALS": ["1m"],
    },
}
"""The aggregator streams of the demo (both need a paid key upstream; the simulator takes any)."""


@dataclass
class StackConfig:
    """Where the services find the broker, the database and the simulator."""

    bootstrap: str
    database_url: str
    sim_http: str  # e.g. http://127.0.0.1:8900
    topic_prefix: str = "coinstream"
    local_broker: bool = True
    rules_file: Path = DEFAULT_RULES
    log_dir: Path | None = None
    rest_interval_s: float = 5.0
    ws_venues: tuple[str, ...] = (
        "binance",
        "coinbase",
        "kraken",
        "coingecko-ws",
        "coinmarketcap-ws",
    )
    rest_sources: tuple[str, ...] = ("coingecko", "coinmarketcap", "cmc-dex", "feargreed")
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    sim_smtp_port: int | None = None  # the simulator's SMTP receiver, for email alerts

    @property
    def sim_ws(self) -> str:
        return self.sim_http.replace("http://", "ws://", 1)


def kafka_env(cfg: StackConfig) -> dict[str, str]:
    env = {"KAFKA_BOOTSTRAP_SERVERS": cfg.bootstrap, "KAFKA_TOPIC_PREFIX": cfg.topic_prefix}
    if cfg.local_broker:
        # Tansu rejects aiokafka's idempotent producer, and a short session timeout makes
        # group joins take about a second there (Apache Kafka needs >= 6000 ms). Tansu does
        # not answer a waiting fetch when records arrive, only after its max wait: the
        # default 500 ms put about 130 ms (p50) on every Kafka hop. It also answers empty
        # when finding the records takes longer than the wait (10 ms failed on a 1 GB log).
        env |= {
            "KAFKA_ENABLE_IDEMPOTENCE": "false",
            "KAFKA_SESSION_TIMEOUT_MS": "2000",
            "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "KAFKA_FETCH_MAX_WAIT_MS": str(LOCAL_FETCH_MAX_WAIT_MS),
        }
    return env


def service_env(name: str, cfg: StackConfig, http_port: int) -> dict[str, str]:
    """The environment one service process gets (on top of the parent's environment)."""
    p = ENV_PREFIX[name]
    env = kafka_env(cfg) | {
        f"{p}HTTP__PORT": str(http_port),
        f"{p}HTTP__HOST": "127.0.0.1",
        f"{p}HEALTH_INTERVAL_S": "5",
        f"{p}LOG_LEVEL": "INFO",
    }
    if name == "consolidator":
        env[f"{p}ROLE"] = "consolidate"
    if name == "ingest-ws":
        urls = {
            "binance": f"{cfg.sim_ws}/binance",
            "coinbase": f"{cfg.sim_ws}/coinbase",
            "kraken": f"{cfg.sim_ws}/kraken/v2",
        }
        for venue, url in urls.items():
            v = venue.upper()
            env[f"{p}{v}__ENABLED"] = str(venue in cfg.ws_venues).lower()
            env[f"{p}{v}__URL"] = url
            env[f"{p}{v}__REST_URL"] = f"{cfg.sim_http}/{venue}"  # trade history (backfill)
            env[f"{p}{v}__SYMBOLS"] = json.dumps(DEMO_SYMBOLS[venue])
        for venue, settings in DEMO_AGGREGATORS.items():
            v = venue.upper().replace("-", "_")
            env[f"{p}{v}__ENABLED"] = str(venue in cfg.ws_venues).lower()
            env[f"{p}{v}__API_KEY"] = "demo-key"
            # the simulator bills nothing: no daily budget to run out of during a demo
            env[f"{p}{v}__DAILY_CREDIT_BUDGET"] = "1000000"
            for setting, value in settings.items():
                text = f"{cfg.sim_ws}{value}" if setting == "URL" else json.dumps(value)
                env[f"{p}{v}__{setting}"] = text
    elif name == "ingest-rest":
        bases = {
            "coingecko": f"{cfg.sim_http}/coingecko/api/v3",
            "coinmarketcap": f"{cfg.sim_http}/cmc",
            "cmc-dex": f"{cfg.sim_http}/cmc",
            "feargreed": f"{cfg.sim_http}/feargreed",
        }
        for source, base in bases.items():
            s = source.upper().replace("-", "_")
            env[f"{p}{s}__ENABLED"] = str(source in cfg.rest_sources).lower()
            env[f"{p}{s}__BASE_URL"] = base
            env[f"{p}{s}__INTERVAL_S"] = str(cfg.rest_interval_s)
            # The providers' free-plan request budgets (CoinGecko: 30 calls a minute) would
            # stall short demo intervals for most of a minute; the simulator has no quota.
            env[f"{p}{s}__CALLS_PER_MINUTE"] = "600"
        env[f"{p}COINMARKETCAP__API_KEY"] = "demo-key"
        env[f"{p}CMC_DEX__API_KEY"] = "demo-key"
        # The default CMC budget is the Basic plan's 333 credits/day, which short demo
        # intervals would use up in minutes; the simulator has no such quota.
        env[f"{p}COINMARKETCAP__CREDITS_PER_DAY"] = "1000000"
    elif name == "sink-postgres":
        env[f"{p}DATABASE_URL"] = cfg.database_url
    elif name == "alerts":
        env[f"{p}DATABASE_URL"] = cfg.database_url
        env[f"{p}RULES_FILE"] = str(cfg.rules_file)
        env["ALERTS_SLACK_WEBHOOK_URL"] = f"{cfg.sim_http}/slack/webhook/T000/B000/demo"
        env["ALERTS_TELEGRAM_BOT_TOKEN"] = "123456:demo-token"
        env["ALERTS_TELEGRAM_API_URL"] = f"{cfg.sim_http}/telegram"
        if cfg.sim_smtp_port is not None:
            env["ALERTS_SMTP__HOST"] = "127.0.0.1"
            env["ALERTS_SMTP__PORT"] = str(cfg.sim_smtp_port)
    env |= cfg.extra_env.get(name, {})
    return env


class ServiceProcess:
    """One service running as ``python -m coinstream.<pkg>``; logs go to a file."""

    def __init__(self, name: str, cfg: StackConfig) -> None:
        self.name = name
        self.module = SERVICES[name]
        self.http_port = free_port()
        self.env = service_env(name, cfg, self.http_port)
        self.log_path = (cfg.log_dir / f"{name}.log") if cfg.log_dir else None
        self.proc: subprocess.Popen[bytes] | None = None
        self._sent: set[signal.Signals] = set()

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._sent = set()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env={**os.environ, **self.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not isinstance(out, int):
            out.close()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0, kill: bool = False) -> int | None:
        """SIGTERM (or SIGKILL) and wait; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` once: a second SIGTERM during draining would kill the process."""
        if self.proc is not None and self.proc.poll() is None and sig not in self._sent:
            self._sent.add(sig)
            self.proc.send_signal(sig)

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class SimulatorProcess:
    """The market simulator as a separate process (HTTP on ``port``, SMTP on ``smtp_port``)."""

    def __init__(
        self,
        port: int = 0,
        rate: float = 5.0,
        log_path: Path | None = None,
        smtp_port: int = 0,
    ) -> None:
        self.port = port or free_port()
        self.smtp_port = smtp_port or free_port()
        self.rate = rate
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from coinstream.devstack.ports import wait_for_port

        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "coinstream.marketsim",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--rate",
                str(self.rate),
                "--smtp-port",
                str(self.smtp_port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not isinstance(out, int):
            out.close()
        wait_for_port("127.0.0.1", self.port, timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def stop_all(procs: list[ServiceProcess], timeout: float = 20.0) -> dict[str, int | None]:
    """SIGTERM every service at once, then wait for each: a graceful, parallel shutdown."""
    for p in procs:
        p.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    codes: dict[str, int | None] = {}
    for p in procs:
        codes[p.name] = p.stop(timeout=max(0.1, deadline - time.monotonic()))
    return codes
