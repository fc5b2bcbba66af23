"""Kraken WebSocket v2: ``ticker`` and ``trade`` (``heartbeat``, ``status`` and acks ignored).

Symbols are ``BTC/USD`` (``XBT`` is accepted and means ``BTC``); prices and quantities arrive
as JSON numbers (decoded as exact decimals) or strings; times are RFC 3339 with microseconds.
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

VENUE = "kraken"
CODES = {"XBT": "BTC", "XXBT": "BTC", "XETH": "ETH", "ZUSD": "USD", "ZEUR": "EUR", "XDG": "DOGE"}
"""Kraken's own asset codes (v1, REST pair names) that differ from the canonical codes."""
IGNORED = frozenset({"heartbeat", "status", "pong"})


class _Trade(msgspec.Struct):
    symbol: str
    price: Any  # a JSON number (decoded as an exact Decimal, or int) or a string
    qty: Any
    trade_id: int | str
    timestamp: str
    side: str | None = None


class _Trades(msgspec.Struct):
    channel: str
    data: list[_Trade]
    method: Any = msgspec.UNSET  # present (even null) means an ack or pong


_trades_decoder = msgspec.json.Decoder(_Trades, float_hook=Decimal)  # floats as in ``loads``


def parse(env: Envelope, registry: Registry, hint: str | None = None) -> list[AnyEvent]:
    if env.channel == "trade" and env.received_text:
        try:
            events = _fast_trades(env, registry)
        except Exception:
            events = None
        if events is not None:
            return events
    return _parse(env, registry, hint)


def _fast_trades(env: Envelope, registry: Registry) -> list[AnyEvent] | None:
    """``trade`` messages in their documented form, decoded into typed structs and written
    straight to wire bytes; None lets the general path decide."""
    msg = _trades_decoder.decode(env.payload)
    if msg.channel != "trade" or msg.method is not msgspec.UNSET:
        return None
    out: list[AnyEvent] = []
    for d in msg.data:
        side, trade_id = d.side, str(d.trade_id)
        if side is None or side not in ("buy", "sell") or not trade_id.isdigit():
            return None
        px, size = to_decimal(d.price, "price"), to_decimal(d.qty, "qty")
        inst, middle, _ = hot_instrument(registry, VENUE, d.symbol, None, CODES)
        symbol = inst.symbol
        event_time = parse_time(d.timestamp, name="trade timestamp")
        event = fastprice.trade(
            middle,
            VENUE,
            symbol,
            inst.base,
            inst.quote,
            inst.asset_id,
            inst.native,
            hashed_id(f"trade\x1fkraken\x1f{symbol}\x1f{trade_id}"),
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


HISTORY_CHANNEL = "/0/public/Trades"
"""Recent trades (REST), fetched by ingest-ws to fill a gap (``backfilled=true``)."""


def _history(env: Envelope, registry: Registry, hint: str | None) -> list[AnyEvent]:
    """``{"error": [], "result": {PAIR: [[price, volume, time, side, type, misc, trade_id],
    ...], "last": ns}}``: the same trades (and event ids) as the ``trade`` channel. The REST
    pair names (``XXBTZUSD``) differ from the WebSocket's, so the symbol comes from the record
    key (``kraken:BTC-USD``)."""
    msg = as_dict(loads(env.payload), "kraken Trades body")
    errors = msg.get("error") or []
    if errors:
        raise ParseError(f"kraken error: {errors!r}")
    if not hint or "-" not in hint:
        raise ParseError("kraken Trades envelope has no symbol in its key (kraken:BASE-QUOTE)")
    inst = registry.instrument(VENUE, hint.replace("-", "/"), hint, CODES)
    result = as_dict(require(msg, "result", "kraken Trades body"), "kraken result")
    out: list[AnyEvent] = []
    for name, rows in result.items():
        if name == "last":
            continue
        for raw_row in as_list(rows, "kraken trades"):
            row = as_list(raw_row, "kraken trade row")
            if len(row) < 7:
                raise ParseError(f"kraken trade row has {len(row)} fields, expected 7")
            trade_id = sequence_id(row[6], "kraken trade_id")
            side = {"b": "buy", "s": "sell"}.get(str(row[3]))
            out.append(
                venue_price(
                    env,
                    VENUE,
                    inst,
                    "trade",
                    trade_id,
                    event_time=parse_time(row[2], "s", name="trade time"),
                    price=to_decimal(row[0], "price"),
                    size=to_decimal(row[1], "volume"),
                    side=side,
                    trade_id=trade_id,
                )
            )
    return out


def _parse(env: Envelope, registry: Registry, hint: str | None = None) -> list[AnyEvent]:
    if env.channel == HISTORY_CHANNEL:
        return _history(env, registry, hint)
    msg = as_dict(loads(env.payload), "kraken message")
    if "method" in msg:  # subscribe/unsubscribe acks and pongs
        return []
    channel = msg.get("channel", env.channel)
    if channel in IGNORED:
        return []
    data = as_list(require(msg, "data", "kraken message"), "kraken data")
    if channel == "ticker":
        return [e for d in data for e in _ticker(env, registry, as_dict(d, "kraken ticker"))]
    if channel == "trade":
        return [_trade(env, registry, as_dict(d, "kraken trade")) for d in data]
    raise channel_error(env)


def _ticker(env: Envelope, registry: Registry, d: dict[str, Any]) -> list[AnyEvent]:
    inst = registry.instrument(VENUE, require(d, "symbol", "kraken ticker"), None, CODES)
    stamp = d.get("timestamp")
    quote = real_quote(
        parse_time(stamp, name="ticker timestamp") if stamp else None,
        env.received_at,
        price=opt_decimal(d.get("last"), "last"),  # only present after a trade in 24 h
        bid=opt_decimal(d.get("bid"), "bid"),
        bid_size=opt_decimal(d.get("bid_qty"), "bid_qty"),
        ask=opt_decimal(d.get("ask"), "ask"),
        ask_size=opt_decimal(d.get("ask_qty"), "ask_qty"),
    )
    if quote is None:  # an empty book and no trade: no quote
        return []
    event_time, values = quote
    return [
        venue_price(
            env,
            VENUE,
            inst,
            "ticker",
            stamp or env.received_at.isoformat(),
            event_time=event_time,
            volume_24h=opt_decimal(d.get("volume"), "volume"),
            change_24h_pct=opt_decimal(d.get("change_pct"), "change_pct"),
            **values,
        )
    ]


def _trade(env: Envelope, registry: Registry, d: dict[str, Any]) -> AnyEvent:
    inst = registry.instrument(VENUE, require(d, "symbol", "kraken trade"), None, CODES)
    trade_id = sequence_id(require(d, "trade_id", "kraken trade"), "kraken trade_id")
    side = d.get("side")
    return venue_price(
        env,
        VENUE,
        inst,
        "trade",
        trade_id,
        event_time=parse_time(require(d, "timestamp", "kraken trade"), name="trade timestamp"),
        price=to_decimal(require(d, "price", "kraken trade"), "price"),
        size=to_decimal(require(d, "qty", "kraken trade"), "qty"),
        side=side if side in ("buy", "sell") else None,
        trade_id=trade_id,
    )


PLUGIN = ParserPlugin(parse, venue_trades=True)
"""The entry point: exchange trades, so they feed candles and the consolidated price."""
