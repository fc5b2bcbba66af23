"""Trade ids in raw envelopes, live frames and backfilled REST pages alike (for checks against
the simulator's own record of every trade)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

Ids = dict[tuple[str, str], set[int]]
"""(venue, canonical symbol) -> trade ids."""


def canonical(venue: str, native: str) -> str:
    if venue == "binance":
        for quote in ("USDT", "USD"):
            if native.endswith(quote):
                return f"{native[: -len(quote)]}-{quote}"
    return native.replace("/", "-")


def trades_in(record: Any) -> Ids:
    """Trade ids in one raw envelope: live frames and backfilled REST pages alike."""
    out: Ids = defaultdict(set)
    env = json.loads(record.value)
    venue, channel = env["source"], env["channel"]
    body = json.loads(env["payload"])
    key = (record.key or b"").decode().partition(":")[2]
    if venue == "binance" and channel.endswith("@trade"):
        data = body["data"]
        out[(venue, canonical(venue, data["s"]))].add(int(data["t"]))
    elif venue == "binance" and channel == "/api/v3/historicalTrades":
        symbol = canonical(venue, env["request"]["params"]["symbol"])
        out[(venue, symbol)].update(int(t["id"]) for t in body)
    elif venue == "coinbase" and channel == "market_trades":
        for event in body.get("events", []):
            for t in event.get("trades", []):
                out[(venue, t["product_id"])].add(int(t["trade_id"]))
    elif venue == "coinbase" and channel.endswith("/ticker"):
        for t in body["trades"]:
            out[(venue, t["product_id"])].add(int(t["trade_id"]))
    elif venue == "kraken" and channel == "trade":
        for t in body.get("data", []):
            out[(venue, canonical(venue, t["symbol"]))].add(int(t["trade_id"]))
    elif venue == "kraken" and channel == "/0/public/Trades":
        for name, rows in body["result"].items():
            if name != "last":
                out[(venue, key)].update(int(r[6]) for r in rows)
    return out
