"""Coinbase Advanced Trade WebSocket: ``ticker`` and ``market_trades``.

Messages are ``{"channel", "client_id", "timestamp" (RFC 3339, nanoseconds), "sequence_num",
"events": [...]}``; one message may hold several events and products, all split here.
``heartbeats`` and ``subscriptions`` frames are ignored. Every number is a decimal string.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from coinstream.normalizer.errors import ParseError
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.parsers.common import (
    AnyEvent,
    ParserPlugin,
    channel_error,
    hot_instrument,
    real_quote,
    sequence_id,
    venue_price,
)
from coinstream.normalizer.values import (
    as_dict,
    as_list,
    loads,
    opt_decimal,
    parse_time,
    require,
    to_decimal,
)
from coinstream.schemas import fastprice
from coinstream.schemas.fastenvelope import Envelope
from coinstream.schemas.fastprice import hashed_id, utc_text

VENUE = "coinbase"
IGNORED = frozenset({"heartbeats", "heartbeat", "subscriptions"})


class _Trade(msgspec.Struct):
    trade_id: str
    product_id: str
    price: str
    size: str
    side: str
    time: str


class _Event(msgspec.Struct):
    trades: list[_Trade] = []


class _Trades(msgspec.Struct):
    channel: str
    events: list[_Event]
    type: str | None = None


_trades_decoder = msgspec.json.Decoder(_Trades)


def parse(env: Envelope, registry: Registry, hint: str | None = None) -> list[AnyEvent]:
    if env.channel == "market_trades" and env.received_text:
        try:
            events = _fast_trades(env, registry)
        except Exception:
            events = None
        if events is not None:
            return events
    return _parse(env, registry)


def _fast_trades(env: Envelope, registry: Registry) -> list[AnyEvent] | None:
    """``market_trades`` messages in their documented form (string fields), decoded into
    typed structs and written straight to wire bytes; None lets the general path decide."""
    msg = _trades_decoder.decode(env.payload)
    if msg.channel != "market_trades" or msg.type is not None:
        return None
    out: list[AnyEvent] = []
    for ev in msg.events:
        for t in ev.trades:
            side = t.side.lower()
            trade_id = t.trade_id
            if side not in ("buy", "sell") or not (trade_id.isdigit() and trade_id.isascii()):
                return None
            px, size = Decimal(t.price), Decimal(t.size)
            if not (px.is_finite() and size.is_finite()):
                return None
            inst, middle, _ = hot_instrument(registry, VENUE, t.product_id, None)
            symbol = inst.symbol
            event_time = parse_time(t.time, name="trade time")
            event = fastprice.trade(
                middle,
                VENUE,
                symbol,
                inst.base,
                inst.quote,
                inst.asset_id,
                inst.native,
                hashed_id(f"trade\x1fcoinbase\x1f{symbol}\x1f{trade_id}"),
                event_time,
                utc_text(event_time),
                env.received_at,
                env.received_text,
                px,
                size,
                side,
                trade_id,
            )  # fmt: skip
            out.append(event)
    return out


HISTORY_CHANNEL = "/api/v3/brokerage/market/products/{product_id}/ticker"
"""Public market trades (REST), fetched by ingest-ws to fill a gap (``backfilled=true``)."""


def _parse(env: Envelope, registry: Registry) -> list[AnyEvent]:
    msg = as_dict(loads(env.payload), "coinbase message")
    if env.channel == HISTORY_CHANNEL:  # {"trades": [...], "best_bid": ..., "best_ask": ...}
        return _trades(env, registry, [{"trades": require(msg, "trades", "market trades")}])
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
            quote = real_quote(
                event_time,
                env.received_at,
                price=opt_decimal(t.get("price"), "price"),
                bid=opt_decimal(t.get("best_bid"), "best_bid"),
                bid_size=opt_decimal(t.get("best_bid_quantity"), "best_bid_quantity"),
                ask=opt_decimal(t.get("best_ask"), "best_ask"),
                ask_size=opt_decimal(t.get("best_ask_quantity"), "best_ask_quantity"),
            )
            if quote is None:
                continue
            out.append(
                venue_price(
                    env,
                    VENUE,
                    inst,
                    "ticker",
                    msg["timestamp"],
                    seq,
                    event_time=quote[0],
                    **quote[1],
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
            trade_id = sequence_id(require(t, "trade_id", "coinbase trade"), "coinbase trade_id")
            side = str(t.get("side", "")).lower()
            out.append(
                venue_price(
                    env,
                    VENUE,
                    inst,
                    "trade",
                    trade_id,
                    event_time=parse_time(require(t, "time", "coinbase trade"), name="trade time"),
                    price=to_decimal(require(t, "price", "coinbase trade"), "price"),
                    size=to_decimal(require(t, "size", "coinbase trade"), "size"),
                    side=side if side in ("buy", "sell") else None,
                    trade_id=trade_id,
                )
            )
    return out


PLUGIN = ParserPlugin(parse, venue_trades=True)
"""The entry point: exchange trades, so they feed candles and the consolidated price."""
