"""Normalizer parser: examplex trades are exchange executions, so they feed candles."""

from __future__ import annotations

from coinstream.normalizer.identity import Registry
from coinstream.normalizer.parsers.common import AnyEvent, Envelope, ParserPlugin, venue_price
from coinstream.normalizer.values import from_epoch, loads, require, to_decimal


def parse(env: Envelope, registry: Registry, hint: str | None = None) -> list[AnyEvent]:
    msg = loads(env.payload)
    if msg.get("type") != "trade":
        return []
    inst = registry.instrument("examplex", str(require(msg, "pair", "trade")), hint)
    trade_id = str(require(msg, "id", "trade"))
    return [
        venue_price(
            env,
            "examplex",
            inst,
            "trade",
            trade_id,
            event_time=from_epoch(require(msg, "ts", "trade"), "ms"),
            price=to_decimal(msg["px"], "px"),
            size=to_decimal(msg["qty"], "qty"),
            side=msg.get("side"),
            trade_id=trade_id,
        )
    ]


PLUGIN = ParserPlugin(parse, venue_trades=True)
