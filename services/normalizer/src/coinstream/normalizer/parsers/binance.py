"""Binance spot WebSocket streams: trade, aggTrade, bookTicker, 24hrTicker, kline.

Frames are combined-stream ``{"stream": "btcusdt@trade", "data": {...}}`` or raw payloads
routed by the envelope ``channel``. ``bookTicker`` has no ``e``/``E`` fields, so frames are
routed by stream name, and its event time is the receipt time; the futures form of
``bookTicker`` (``e``/``E``/``T`` present) is a perpetual or delivery market timed by ``T``. Times are milliseconds, or
microseconds on ``timeUnit=MICROSECOND`` streams (detected by magnitude).
"""

from __future__ import annotations

import re
from dataclasses import replace
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
    from_epoch,
    loads,
    opt_decimal,
    require,
    to_decimal,
)
from coinstream.schemas import CandleEvent, fastprice
from coinstream.schemas.fastenvelope import Envelope
from coinstream.schemas.fastprice import epoch_ms, event_id, hashed_id

VENUE = "binance"


class _Data(msgspec.Struct):
    """The fields of a trade or bookTicker (typed decode; anything else falls back)."""

    s: str
    t: int | None = None
    p: str | None = None
    q: str | None = None
    T: int | None = None
    m: bool | None = None
    u: int | None = None
    b: str | None = None
    B: str | None = None
    a: str | int | None = None  # bookTicker ask (text) or aggTrade id (integer)
    A: str | None = None


class _Frame(msgspec.Struct):
    stream: str
    data: _Data


_frame_decoder = msgspec.json.Decoder(_Frame)
_MS_MIN, _MS_MAX = 100_000_000_000, 100_000_000_000_000  # from_epoch's millisecond range


def parse(env: Envelope, registry: Registry, hint: str | None = None) -> list[AnyEvent]:
    channel = env.channel
    if channel.endswith(("@trade", "@aggTrade", "@bookTicker")) and env.received_text:
        try:
            event = _fast(env, registry, hint)
        except Exception:
            event = None
        if event is not None:
            return [event]
    return _parse(env, registry, hint)


def _fast(env: Envelope, registry: Registry, hint: str | None) -> AnyEvent | None:
    """Combined-stream trades, aggTrades and bookTickers in their usual form (string decimals, integer
    ids and millisecond times), decoded into typed structs and written straight to wire
    bytes. Returns None (the general path decides) for anything else; same output."""
    frame = _frame_decoder.decode(env.payload)
    kind = frame.stream.partition("@")[2]
    d = frame.data
    if kind in ("trade", "aggTrade"):
        t = d.t if kind == "trade" else (d.a if type(d.a) is int else None)
        p, q, ms = d.p, d.q, d.T
        if t is None or t < 0 or p is None or q is None or ms is None:
            return None
        if not _MS_MIN <= ms < _MS_MAX:
            return None
        px, size = Decimal(p), Decimal(q)
        if not (px.is_finite() and size.is_finite()):
            return None
        inst, trade_middle, _ = hot_instrument(registry, VENUE, d.s, hint)
        symbol = inst.symbol
        trade_id = str(t) if kind == "trade" else f"agg-{t}"
        event_time, event_time_text = epoch_ms(ms)
        return fastprice.trade(
            trade_middle, VENUE, symbol, inst.base, inst.quote, inst.asset_id, inst.native,
            hashed_id(f"trade\x1fbinance\x1f{symbol}\x1f{trade_id}"), event_time,
            event_time_text, env.received_at, env.received_text, px, size,
            "sell" if d.m else "buy", trade_id,
        )  # fmt: skip
    if kind == "bookTicker":
        u, b, bs, a, asz = d.u, d.b, d.B, d.a, d.A
        if (
            u is None
            or b is None
            or bs is None
            or type(a) is not str
            or asz is None
            or d.T is not None
        ):
            return None  # incomplete, or the futures form (the general path knows both)
        bid, bid_size, ask, ask_size = Decimal(b), Decimal(bs), Decimal(a), Decimal(asz)
        if not (
            bid.is_finite() and bid_size.is_finite() and ask.is_finite() and ask_size.is_finite()
        ) or not (bid and ask):  # an empty side is a placeholder: the general path drops it
            return None
        inst, _, quote_middle = hot_instrument(registry, VENUE, d.s, hint)
        symbol = inst.symbol
        return fastprice.quote(
            quote_middle, VENUE, symbol, inst.base, inst.quote, inst.asset_id, inst.native,
            hashed_id(f"quote\x1fbinance\x1f{symbol}\x1f{u}"),
            env.received_at, env.received_text, env.received_at, env.received_text,
            bid, bid_size, ask, ask_size,
        )  # fmt: skip
    return None


HISTORY_CHANNEL = "/api/v3/historicalTrades"
"""Older trades (REST), fetched by ingest-ws to fill a gap (``backfilled=true``)."""


def _history(env: Envelope, registry: Registry, hint: str | None) -> list[AnyEvent]:
    """``[{"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", ...}]``: the same trades
    (and event ids) as the ``<symbol>@trade`` stream; the symbol is the request's."""
    params = (env.request or {}).get("params") or {}
    native = params.get("symbol")
    if not isinstance(native, str):
        raise ParseError("historicalTrades envelope has no request symbol")
    inst = registry.instrument(VENUE, native, hint)
    out: list[AnyEvent] = []
    for raw_t in as_list(loads(env.payload), "historicalTrades body"):
        t = as_dict(raw_t, "historical trade")
        trade_id = sequence_id(require(t, "id", "historical trade"), "binance historical trade id")
        out.append(
            venue_price(
                env,
                VENUE,
                inst,
                "trade",
                trade_id,
                event_time=from_epoch(require(t, "time", "historical trade"), name="trade time"),
                price=to_decimal(require(t, "price", "historical trade"), "price"),
                size=to_decimal(require(t, "qty", "historical trade"), "qty"),
                side="sell" if t.get("isBuyerMaker") else "buy",
                trade_id=trade_id,
            )
        )
    return out


def _parse(env: Envelope, registry: Registry, hint: str | None) -> list[AnyEvent]:
    if env.channel == HISTORY_CHANNEL:
        return _history(env, registry, hint)
    frame = loads(env.payload)
    if not isinstance(frame, dict):
        raise ParseError("binance frame must be a JSON object")
    if "stream" in frame and "data" in frame:
        stream, data = frame["stream"], frame["data"]
    elif "result" in frame and "id" in frame:
        return []  # SUBSCRIBE / LIST_SUBSCRIPTIONS reply
    else:
        stream, data = env.channel, frame
    if not isinstance(stream, str) or not isinstance(data, dict):
        raise ParseError("binance frame has no stream name or data object")
    _, _, kind = stream.partition("@")
    if kind == "trade":
        return [_trade(env, registry, data, hint)]
    if kind == "bookTicker":
        return _book_ticker(env, registry, data, hint)
    if kind == "aggTrade":
        return [_agg_trade(env, registry, data, hint)]
    if kind in ("ticker", "ticker_1d"):
        return _ticker(env, registry, data, hint)
    if kind.startswith("kline_"):
        return [_kline(env, registry, data, hint)]
    if data.get("e") == "serverShutdown" or stream == "!serverShutdown":
        return []
    raise channel_error(env)


def _trade(env: Envelope, registry: Registry, d: dict[str, Any], hint: str | None) -> AnyEvent:
    try:  # the hot path: direct indexing, one error message for a missing field
        native, trade_id, t, p, q = d["s"], d["t"], d["T"], d["p"], d["q"]
    except KeyError as exc:
        raise ParseError(f"trade has no {exc.args[0]!r} field") from None
    trade_id = sequence_id(trade_id, "binance trade t")
    inst = registry.instrument(VENUE, native, hint)
    return venue_price(
        env,
        VENUE,
        inst,
        "trade",
        trade_id,
        event_time=from_epoch(t, name="trade T"),
        price=to_decimal(p, "trade p"),
        size=to_decimal(q, "trade q"),
        side="sell" if d.get("m") else "buy",  # m: the buyer is the maker -> taker sold
        trade_id=trade_id,
    )


def _agg_trade(env: Envelope, registry: Registry, d: dict[str, Any], hint: str | None) -> AnyEvent:
    inst = registry.instrument(VENUE, require(d, "s", "aggTrade"), hint)
    trade_id = f"agg-{sequence_id(require(d, 'a', 'aggTrade'), 'binance aggTrade a')}"
    return venue_price(
        env,
        VENUE,
        inst,
        "trade",
        trade_id,
        event_time=from_epoch(require(d, "T", "aggTrade"), name="aggTrade T"),
        price=to_decimal(require(d, "p", "aggTrade"), "aggTrade p"),
        size=to_decimal(require(d, "q", "aggTrade"), "aggTrade q"),
        side="sell" if d.get("m") else "buy",
        trade_id=trade_id,
    )


def _book_ticker(
    env: Envelope, registry: Registry, d: dict[str, Any], hint: str | None
) -> list[AnyEvent]:
    """Spot ``bookTicker`` (``u s b B a A``: no exchange time, so the receipt time), or the
    USD-M / COIN-M futures form on the same stream name (``e E T`` added, symbols
    ``BTCUSDT`` perpetual, ``BTCUSD_PERP``, ``BTCUSDT_250328`` delivery): a ``perpetual`` or
    ``future`` market, timed by the transaction time ``T``."""
    native = str(require(d, "s", "bookTicker"))
    market, exchange_time = None, None
    if "T" in d or "E" in d or d.get("e") == "bookTicker":
        market, native_base = futures_market(native)
        inst = replace(registry.instrument(VENUE, native_base, hint), native=native)
        exchange_time = from_epoch(d.get("T") or require(d, "E", "bookTicker"), name="bookTicker T")
    else:
        inst = registry.instrument(VENUE, native, hint)
    update_id = require(d, "u", "bookTicker")
    quote = real_quote(
        exchange_time,
        env.received_at,
        bid=to_decimal(require(d, "b", "bookTicker"), "bookTicker b"),
        bid_size=to_decimal(require(d, "B", "bookTicker"), "bookTicker B"),
        ask=to_decimal(require(d, "a", "bookTicker"), "bookTicker a"),
        ask_size=to_decimal(require(d, "A", "bookTicker"), "bookTicker A"),
    )
    if quote is None:  # an empty book
        return []
    id_parts = (update_id,) if market is None else (market, update_id)
    return [
        venue_price(
            env, VENUE, inst, "quote", *id_parts, event_time=quote[0], market=market, **quote[1]
        )
    ]


_DELIVERY = re.compile(r"(.+)_([0-9]{6})")


def futures_market(native: str) -> tuple[str, str]:
    """``(market, underlying symbol)`` of a Binance futures symbol: ``BTCUSDT`` and
    ``BTCUSD_PERP`` are perpetual, ``BTCUSDT_250328`` a delivery future."""
    if native.endswith("_PERP"):
        return "perpetual", native.removesuffix("_PERP")
    delivery = _DELIVERY.fullmatch(native)
    if delivery:
        return "future", delivery.group(1)
    return "perpetual", native


def _ticker(
    env: Envelope, registry: Registry, d: dict[str, Any], hint: str | None
) -> list[AnyEvent]:
    inst = registry.instrument(VENUE, require(d, "s", "24hrTicker"), hint)
    quote = real_quote(
        from_epoch(require(d, "E", "24hrTicker"), name="24hrTicker E"),
        env.received_at,
        price=to_decimal(require(d, "c", "24hrTicker"), "24hrTicker c"),
        bid=opt_decimal(d.get("b"), "24hrTicker b"),
        bid_size=opt_decimal(d.get("B"), "24hrTicker B"),
        ask=opt_decimal(d.get("a"), "24hrTicker a"),
        ask_size=opt_decimal(d.get("A"), "24hrTicker A"),
    )
    if quote is None:  # no trade in 24 h and an empty book
        return []
    event_time, values = quote
    last_size = opt_decimal(d.get("Q"), "24hrTicker Q") if values["price"] is not None else None
    return [
        venue_price(
            env,
            VENUE,
            inst,
            "ticker",
            require(d, "E", "24hrTicker"),
            event_time=event_time,
            size=last_size,
            volume_24h=opt_decimal(d.get("v"), "24hrTicker v"),
            quote_volume_24h=opt_decimal(d.get("q"), "24hrTicker q"),
            change_24h_pct=opt_decimal(d.get("P"), "24hrTicker P"),
            **values,
        )
    ]


def _kline(env: Envelope, registry: Registry, d: dict[str, Any], hint: str | None) -> AnyEvent:
    """The venue's own kline, as a ``CandleEvent`` with ``source=binance``.

    Revision is ``2 * n + x`` (``n``, the trade count, only grows while the kline is open, and
    the closing update ``x=true`` ranks above the last open one), so updates of one kline
    share an id and order by revision.
    """
    k = require(d, "k", "kline")
    inst = registry.instrument(VENUE, require(k, "s", "kline"), hint)
    interval = str(require(k, "i", "kline"))
    open_time = from_epoch(require(k, "t", "kline"), name="kline t")
    close_time = from_epoch(require(k, "T", "kline"), name="kline T")
    volume = to_decimal(require(k, "v", "kline"), "kline v")
    quote_volume = to_decimal(require(k, "q", "kline"), "kline q")
    close = to_decimal(require(k, "c", "kline"), "kline c")
    trades = int(require(k, "n", "kline"))
    return CandleEvent(
        event_id=event_id("kline", VENUE, inst.symbol, interval, open_time.isoformat()),
        event_time=open_time,
        received_at=env.received_at,
        source=VENUE,
        revision=2 * trades + (1 if k.get("x") else 0),
        venue=VENUE,
        symbol=inst.symbol,
        interval=interval,
        open_time=open_time,
        close_time=close_time,
        open=to_decimal(require(k, "o", "kline"), "kline o"),
        high=to_decimal(require(k, "h", "kline"), "kline h"),
        low=to_decimal(require(k, "l", "kline"), "kline l"),
        close=close,
        volume=volume,
        quote_volume=quote_volume,
        vwap=(quote_volume / volume) if volume else close,
        trade_count=trades,
        final=bool(k.get("x", False)),
    )


PLUGIN = ParserPlugin(parse, venue_trades=True)
"""The entry point: exchange trades, so they feed candles and the consolidated price."""
