"""Coinbase Advanced Trade WebSocket: ``ticker`` and ``market_trades``.

Messages are ``{"channel", "client_id", "timestamp" (RFC 3339, nanoseconds), "sequence_num",
"events": [...]}``; one message may hold several events and products, all split here.
``heartbeats`` and ``subscriptions`` frames are ignored. Every number is a decimal string.
"""

from __future__ import annotations

from typing import Any

from coinstream.normalizer.errors import ParseError
from coinstream.normalizer.fastprice import event_id
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.parsers.common import AnyEvent, Envelope, channel_error, price
from coinstream.normalizer.values import (
    as_dict,
    as_list,
    loads,
    opt_decimal,
    parse_time,
    require,
    to_decimal,
)

VENUE = "coinbase"
IGNORED = frozenset({"heartbeats", "heartbeat", "subscriptions"})


def parse(env: Envelope, registry: Registry, hint: str | None = None) -> list[AnyEvent]:
    msg = as_dict(loads(env.payload), "coinbase message")
    channel = msg.get("channel", env.channel)
    if channel in IGNORED or msg.get("type") in ("subscriptions", "heartbeat"):
        return []
    if msg.get("type") == "error":
        raise ParseError(f"coinbase error message: {msg.get('message')!r}")
    events = as_list(require(msg, "events", "coinbase message"), "coinbase events")
    if channel in ("ticker", "ticker_batch"):
        return _tickers(env, registry, msg, events)
    if channel == "market_trades":
        return _trades(env, registry, events)
    raise channel_error(env)


def _tickers(
    env: Envelope, registry: Registry, msg: dict[str, Any], events: list[Any]
) -> list[AnyEvent]:
    event_time = parse_time(require(msg, "timestamp", "coinbase ticker"), name="timestamp")
    seq = msg.get("sequence_num", "")
    out: list[AnyEvent] = []
    for ev in events:
        for raw_t in as_list(as_dict(ev, "coinbase event").get("tickers", []), "tickers"):
            t = as_dict(raw_t, "coinbase ticker")
            inst = registry.instrument(VENUE, require(t, "product_id", "coinbase ticker"))
            out.append(
                price(
                    kind="ticker",
                    source=VENUE,
                    event_id=event_id("ticker", VENUE, inst.symbol, msg["timestamp"], seq),
                    event_time=event_time,
                    received_at=env.received_at,
                    symbol=inst.symbol,
                    base=inst.base,
                    quote=inst.quote,
                    asset_id=inst.asset_id,
                    native_symbol=inst.native,
                    price=opt_decimal(t.get("price"), "price"),
                    bid=opt_decimal(t.get("best_bid"), "best_bid"),
                    bid_size=opt_decimal(t.get("best_bid_quantity"), "best_bid_quantity"),
                    ask=opt_decimal(t.get("best_ask"), "best_ask"),
                    ask_size=opt_decimal(t.get("best_ask_quantity"), "best_ask_quantity"),
                    volume_24h=opt_decimal(t.get("volume_24_h"), "volume_24_h"),
                    change_24h_pct=opt_decimal(
                        t.get("price_percent_chg_24_h"), "price_percent_chg_24_h"
                    ),
                )
            )
    return out


def _trades(env: Envelope, registry: Registry, events: list[Any]) -> list[AnyEvent]:
    out: list[AnyEvent] = []
    for ev in events:
        for raw_t in as_list(as_dict(ev, "coinbase event").get("trades", []), "trades"):
            t = as_dict(raw_t, "coinbase trade")
            inst = registry.instrument(VENUE, require(t, "product_id", "coinbase trade"))
            trade_id = str(require(t, "trade_id", "coinbase trade"))
            side = str(t.get("side", "")).lower()
            out.append(
                price(
                    kind="trade",
                    source=VENUE,
                    event_id=event_id("trade", VENUE, inst.symbol, trade_id),
                    event_time=parse_time(require(t, "time", "coinbase trade"), name="trade time"),
                    received_at=env.received_at,
                    symbol=inst.symbol,
                    base=inst.base,
                    quote=inst.quote,
                    asset_id=inst.asset_id,
                    native_symbol=inst.native,
                    price=to_decimal(require(t, "price", "coinbase trade"), "price"),
                    size=to_decimal(require(t, "size", "coinbase trade"), "size"),
                    side=side if side in ("buy", "sell") else None,
                    trade_id=trade_id,
                )
            )
    return out
