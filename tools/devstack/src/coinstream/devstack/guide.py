"""What ``make demo`` prints once everything runs: where to look, and how to make things happen.

``guide()`` is pure: it turns what the demo started (addresses, logs, the alert rules and the
simulator's current prices) into text. ``trigger()`` gives, per alert rule, the simulator
control that makes it fire.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

# Faults the simulator understands (tools/market-sim: wsfaults.py, rest.py, webhook.py, smtp.py).
FAULTS = (
    "<venue>.silent true | <venue>.disconnect N | <venue>.reject N | <venue>.gap N | "
    "<venue>.duplicate N | <venue>.reorder N | <venue>.no_pong true | <venue>.malformed N | "
    "<venue>.close_code C (venue: binance, coinbase, kraken, coingecko-ws, coinmarketcap-ws); "
    "coingecko-ws.api_key K + .auth_failure http|disconnect|code, .max_subscriptions N; "
    "coinmarketcap-ws.api_key K + .auth_close 4100|4101|4102, .sub_limit N, .error_code E; "
    "<provider>.faults [{kind: status|rate_limit|malformed|slow, count: N}] (provider: "
    "coingecko, coinmarketcap, cmc-dex, feargreed); webhook.500 N; smtp.reject 451|554"
)
SPREAD_VENUE = "kraken"  # lists BTC-USD and ETH-USD next to Coinbase in the demo


@dataclass(frozen=True)
class Started:
    """What the demo started and where it is."""

    bootstrap: str
    database_url: str
    sim_url: str
    topic_prefix: str
    log_dir: Path
    services: Sequence[tuple[str, str, Path | None]]  # name, health URL, log file
    psql: str
    python: str
    example: Path  # examples/consume_prices.py
    rules_file: Path
    local_broker: bool
    sim_smtp: str | None = None  # host:port of the simulator's SMTP receiver


def _post(sim_url: str, path: str, body: Mapping[str, Any]) -> str:
    data = json.dumps(body, separators=(",", ":"))
    return f"curl -s -X POST {sim_url}{path} -d {shlex.quote(data)}"


def _moved(price: Decimal, percent: float) -> str:
    return str((price * Decimal(str(1 + percent / 100))).quantize(Decimal("0.01")))


def trigger(rule: Mapping[str, Any], sim_url: str, prices: Mapping[str, Decimal]) -> str:
    """The simulator control that makes ``rule`` fire (or what to wait for)."""
    kind = rule.get("type")
    symbols = [s for s in rule.get("symbols", []) if "*" not in s] or ["ETH-USDT"]
    symbol = symbols[0]
    now = prices.get(symbol, Decimal(0))
    if kind == "price_threshold":
        beyond = 1.5 if rule.get("direction") == "above" else -1.5
        target = _moved(Decimal(str(rule["threshold"])), beyond)
        return _post(sim_url, "/_sim/price", {"symbol": symbol, "price": target})
    if kind == "percent_change":
        target = _moved(now, float(rule.get("percent", 5)) + 1)
        return _post(sim_url, "/_sim/price", {"symbol": symbol, "price": target})
    if kind == "spread":
        percent = float(rule.get("percent", 1)) + 1
        body = {"venue": SPREAD_VENUE, "percent": percent}
        command = _post(sim_url, "/_sim/diverge", body)
        return f"{command}   (Kraken {percent:g}% off the market; percent null ends it)"
    if kind == "feed_status":
        return _post(sim_url, "/_sim/faults", {"name": "binance.gap", "value": 5})
    if kind == "no_data":
        timeout = rule.get("timeout", "60s")
        silent = _post(sim_url, "/_sim/faults", {"name": "binance.silent", "value": True})
        return f"{silent}   (then wait {timeout}; value null ends it)"
    if kind == "sentiment":
        return "move BTC-USDT by 10% (as above): the Fear & Greed index follows BTC's 24 h change"
    if kind == "service_health":
        reject = _post(sim_url, "/_sim/faults", {"name": "binance.disconnect", "value": 1000})
        return f"{reject}   (ingest-ws degraded for {rule.get('for', '30s')})"
    if kind == "error_rate":
        fault = [{"kind": "status", "status": 503, "count": -1}]
        return _post(sim_url, "/_sim/faults", {"name": "coingecko.faults", "value": fault})
    return "see docs/alerts.md"


def load_rules(path: Path) -> list[dict[str, Any]]:
    """The rules of an alert-rules file (ids and parameters; validation is the service's)."""
    doc = yaml.safe_load(path.read_text()) or {}
    return [r for r in doc.get("rules", []) if isinstance(r, dict) and "id" in r]


def guide(
    started: Started,
    rules: Sequence[Mapping[str, Any]],
    prices: Mapping[str, Decimal],
    views: Sequence[str],
) -> str:
    """The text printed after start-up."""
    s = started
    topic = f"{s.topic_prefix}.prices.v1"
    view_list = ", ".join(views) or "latest_prices, latest_quotes, daily_ohlcv, ... (\\dv)"
    lines = [
        "",
        "=== Where to look ===",
        "Data in PostgreSQL (tables and views):",
        f"  {s.psql} {s.database_url} -c 'SELECT * FROM latest_prices'",
        f"  views: {view_list}",
        f"  per source: {s.psql} {s.database_url} -c "
        "'SELECT source, kind, count(*) FROM prices GROUP BY 1, 2 ORDER BY 1, 2'",
        f"Events on Kafka (bootstrap {s.bootstrap}), e.g. {topic}:",
        f"  {s.python} {s.example} --bootstrap {s.bootstrap} --prefix "
        f"{s.topic_prefix} --group look-$USER --symbol BTC-USDT"
        + (" --session-timeout-ms 2000" if s.local_broker else ""),
    ]
    if s.local_broker:
        lines.append(
            "  (librdkafka 2.0 clients such as Debian's kcat cannot talk to this broker; "
            "confluent-kafka 2.16+ can: docs/local-broker.md)"
        )
    lines += [
        f"Simulator controls ({s.sim_url}):",
        f"  state (prices, faults, recordings): curl -s {s.sim_url}/_sim/state",
        "  prices:   " + _post(s.sim_url, "/_sim/price", {"symbol": "ETH-USDT", "price": "4000"}),
        "  faults:   "
        + _post(s.sim_url, "/_sim/faults", {"name": "kraken.disconnect", "value": 1})
        + "   (value null clears)",
        f"            {FAULTS}",
        "  diverge:  "
        + _post(s.sim_url, "/_sim/diverge", {"venue": SPREAD_VENUE, "percent": 2})
        + "   (percent null ends it)",
        f"  metadata: curl -s {s.sim_url}/coingecko/api/v3/coins/bitcoin   (assets, exchanges "
        "and DEX pairs go to the compacted metadata topic and the assets/exchanges/dex_pairs "
        "tables)",
        "  rename:   "
        + _post(s.sim_url, "/_sim/assets/bitcoin", {"name": "Bitcoin (renamed)"})
        + "   (name, description, links)",
        f"  Slack messages received: curl -s {s.sim_url}/_sim/recordings/slack",
        f"  emails received: curl -s {s.sim_url}/_sim/recordings/smtp"
        + (f"   (SMTP receiver {s.sim_smtp})" if s.sim_smtp else ""),
        f"Alert rules ({s.rules_file}) and how to trigger each:",
    ]
    width = max((len(str(r["id"])) for r in rules), default=0)
    for rule in rules:
        lines.append(f"  {str(rule['id']).ljust(width)}  {trigger(rule, s.sim_url, prices)}")
    lines.append(f"Logs: {s.log_dir}/ (one JSON-lines file per process); health and metrics:")
    for name, health, log in s.services:
        lines.append(f"  {name.ljust(13)} {health}/readyz  {health}/metrics  {log or '-'}")
    lines.append("")
    return "\n".join(lines)
