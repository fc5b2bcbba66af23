"""WebSocket venue parsers (Binance, Coinbase AT, Kraken v2) on the documented frames."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from coinstream.normalizer.errors import ParseError, UnsupportedChannelError
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.parsers import PARSERS
from coinstream.schemas import CandleEvent, Event, PriceEvent

from .normalizer_helpers import env, wire


def parse(source: str, channel: str, payload: Any, hint: str | None = None) -> list[Event]:
    events = PARSERS[source](env(source, channel, payload), Registry(), hint)
    return [wire(e) for e in events]


B_TRADE = {
    "e": "trade",
    "E": 1672515782136,
    "s": "BNBBTC",
    "t": 12345,
    "p": "0.001",
    "q": "100",
    "T": 1672515782136,
    "m": True,
    "M": True,
}
B_AGG = '{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}'
B_BOOK = '{"stream":"nknusdt@bookTicker","data":{"u":499869768,"s":"NKNUSDT","b":"0.35210000","B":"672.00000000","a":"0.35260000","A":"3199.00000000"}}'
B_TICKER = {
    "e": "24hrTicker",
    "E": 1672515782136,
    "s": "BNBBTC",
    "p": "0.0015",
    "P": "250.00",
    "w": "0.0018",
    "x": "0.0009",
    "c": "0.0025",
    "Q": "10",
    "b": "0.0024",
    "B": "10",
    "a": "0.0026",
    "A": "100",
    "o": "0.0010",
    "h": "0.0025",
    "l": "0.0010",
    "v": "10000",
    "q": "18",
    "O": 0,
    "C": 86400000,
    "F": 0,
    "L": 18150,
    "n": 18151,
}
B_KLINE = '{"stream":"nknusdt@kline_1m","data":{"e":"kline","E":1633998523963,"s":"NKNUSDT","k":{"t":1633998480000,"T":1633998539999,"s":"NKNUSDT","i":"1m","f":19862761,"L":19862790,"o":"0.35270000","c":"0.35280000","h":"0.35280000","l":"0.35220000","v":"25877.00000000","n":30,"x":false,"q":"9116.04600000","V":"58.00000000","Q":"20.46240000","B":"0"}}}'


@pytest.mark.parametrize(
    ("channel", "payload", "expect"),
    [
        (
            "bnbbtc@trade",
            {"stream": "bnbbtc@trade", "data": B_TRADE},
            {
                "kind": "trade",
                "symbol": "BNB-BTC",
                "price": Decimal("0.001"),
                "side": "sell",
                "trade_id": "12345",
            },
        ),
        (
            "bnbbtc@trade",
            B_TRADE,
            {"kind": "trade", "symbol": "BNB-BTC", "size": Decimal(100)},
        ),  # raw (non-combined) stream
        (
            "nknusdt@aggTrade",
            B_AGG,
            {
                "kind": "trade",
                "symbol": "NKN-USDT",
                "price": Decimal("0.35280000"),
                "side": "buy",
                "trade_id": "agg-15683430",
            },
        ),
        (
            "nknusdt@bookTicker",
            B_BOOK,
            {
                "kind": "quote",
                "bid": Decimal("0.35210000"),
                "ask_size": Decimal("3199.00000000"),
                "asset_id": "nkn",
            },
        ),
        (
            "bnbbtc@ticker",
            {"stream": "bnbbtc@ticker", "data": B_TICKER},
            {
                "kind": "ticker",
                "price": Decimal("0.0025"),
                "change_24h_pct": Decimal("250.00"),
                "quote_volume_24h": Decimal(18),
            },
        ),
    ],
)
def test_binance_streams(channel: str, payload: Any, expect: dict[str, Any]) -> None:
    [event] = parse("binance", channel, payload)
    assert isinstance(event, PriceEvent)
    assert event.source == "binance"
    for field, value in expect.items():
        assert getattr(event, field) == value, field


def test_binance_trade_time_and_id_are_deterministic() -> None:
    frame = {"stream": "bnbbtc@trade", "data": B_TRADE}
    [a], [b] = parse("binance", "bnbbtc@trade", frame), parse("binance", "bnbbtc@trade", frame)
    assert a.event_id == b.event_id
    assert a.event_time.isoformat() == "2022-12-31T19:43:02.136000+00:00"


def test_binance_microsecond_streams_are_detected() -> None:
    data = {**B_TRADE, "T": 1672515782136123, "E": 1672515782136123}
    [event] = parse("binance", "bnbbtc@trade", {"stream": "bnbbtc@trade", "data": data})
    assert event.event_time.microsecond == 136123


def test_binance_bookticker_without_event_time_uses_receipt_time() -> None:
    [event] = parse("binance", "nknusdt@bookTicker", B_BOOK)
    assert event.event_time == event.received_at


def test_binance_kline_is_a_venue_candle_whose_revision_grows() -> None:
    [candle] = parse("binance", "nknusdt@kline_1m", B_KLINE)
    assert isinstance(candle, CandleEvent)
    assert (candle.open, candle.close, candle.trade_count, candle.final) == (
        Decimal("0.35270000"),
        Decimal("0.35280000"),
        30,
        False,
    )
    assert candle.vwap == Decimal("9116.04600000") / Decimal("25877.00000000")
    closed = B_KLINE.replace('"x":false', '"x":true')
    [final] = parse("binance", "nknusdt@kline_1m", closed)
    assert final.event_id == candle.event_id and final.revision > candle.revision


@pytest.mark.parametrize(
    "frame",
    [
        '{"result": null, "id": 1}',
        '{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}',
    ],
)
def test_binance_control_frames_are_ignored(frame: str) -> None:
    assert parse("binance", "btcusdt@trade", frame) == []


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (
            '{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":1,"q":"1","T":1}}',
            "no 'p' field",
        ),
        (
            '{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":1,"p":"x","q":"1","T":1}}',
            "not a decimal",
        ),
        ('{"stream":"btcusdt@depth","data":{}}', "no parser"),
        ("[1,2", "not valid JSON"),
    ],
)
def test_binance_bad_frames_raise_typed_errors(frame: str, error: str) -> None:
    with pytest.raises(ParseError, match=error):
        parse("binance", "btcusdt@trade", frame)


CB_TICKER = '{"channel":"ticker","client_id":"","timestamp":"2023-02-09T20:30:37.167359596Z","sequence_num":0,"events":[{"type":"snapshot","tickers":[{"type":"ticker","product_id":"BTC-USD","price":"21932.98","volume_24_h":"16038.28770938","low_24_h":"21835.29","high_24_h":"23011.18","low_52_w":"15460","high_52_w":"48240","price_percent_chg_24_h":"-4.15775596190603","best_bid":"21932.97","best_bid_quantity":"0.5","best_ask":"21932.99","best_ask_quantity":"0.25"},{"type":"ticker","product_id":"ETH-USD","price":"1650.1","volume_24_h":"1","low_24_h":"1","high_24_h":"2","low_52_w":"1","high_52_w":"2","price_percent_chg_24_h":"1"}]}]}'
CB_TRADES = '{"channel":"market_trades","client_id":"","timestamp":"2023-02-09T20:19:35.39625135Z","sequence_num":0,"events":[{"type":"snapshot","trades":[{"trade_id":"000000000","product_id":"ETH-USD","price":"1260.01","size":"0.3","side":"BUY","time":"2019-08-14T20:42:27.265Z"},{"trade_id":"000000001","product_id":"ETH-USD","price":"1260.02","size":"0.1","side":"SELL","time":"2019-08-14T20:42:27.266Z"}]}]}'
CB_HEARTBEAT = '{"channel":"heartbeats","client_id":"","timestamp":"2023-06-23T20:31:26.122969572Z","sequence_num":0,"events":[{"current_time":"2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105","heartbeat_counter":"3049"}]}'
CB_SUBS = '{"channel":"subscriptions","client_id":"","timestamp":"2023-02-09T20:32:37.167359596Z","sequence_num":1,"events":[{"subscriptions":{"level2":["BTC-USD"],"market_trades":["BTC-USD","ETH-USD"]}}]}'


def test_coinbase_ticker_message_is_split_per_product_with_nanosecond_time() -> None:
    btc, eth = parse("coinbase", "ticker", CB_TICKER)
    assert isinstance(btc, PriceEvent) and isinstance(eth, PriceEvent)
    assert (btc.symbol, btc.price, btc.bid, btc.ask_size) == (
        "BTC-USD",
        Decimal("21932.98"),
        Decimal("21932.97"),
        Decimal("0.25"),
    )
    assert btc.event_time.isoformat() == "2023-02-09T20:30:37.167359+00:00"
    assert (eth.symbol, eth.bid) == ("ETH-USD", None)  # pre-2024 tickers have no best_* fields
    assert btc.event_id != eth.event_id


def test_coinbase_market_trades_become_trades() -> None:
    a, b = parse("coinbase", "market_trades", CB_TRADES)
    assert isinstance(a, PriceEvent) and isinstance(b, PriceEvent)
    assert (a.kind, a.symbol, a.price, a.size, a.side, a.trade_id) == (
        "trade",
        "ETH-USD",
        Decimal("1260.01"),
        Decimal("0.3"),
        "buy",
        "000000000",
    )
    assert b.side == "sell"
    assert a.event_time.isoformat() == "2019-08-14T20:42:27.265000+00:00"


@pytest.mark.parametrize(
    ("channel", "frame"), [("heartbeats", CB_HEARTBEAT), ("subscriptions", CB_SUBS)]
)
def test_coinbase_heartbeats_and_subscription_acks_are_ignored(channel: str, frame: str) -> None:
    assert parse("coinbase", channel, frame) == []


def test_coinbase_unknown_channel_is_unsupported() -> None:
    with pytest.raises(UnsupportedChannelError):
        parse("coinbase", "l2_data", '{"channel":"l2_data","events":[]}')


KR_TICKER = '{"channel": "ticker", "type": "snapshot", "data": [{"symbol": "ALGO/USD", "bid": 0.10025, "bid_qty": 740.0, "ask": 0.10036, "ask_qty": 1361.44813783, "last": 0.10035, "volume": 997038.98383185, "vwap": 0.10148, "low": 0.09979, "high": 0.10285, "change": -0.00017, "change_pct": -0.17, "timestamp": "2023-09-25T09:04:31.742648Z"}]}'
KR_TRADE = '{"channel": "trade", "type": "snapshot", "data": [{"symbol": "MATIC/USD", "side": "buy", "price": 0.5147, "qty": 6423.46326, "ord_type": "limit", "trade_id": 4665846, "timestamp": "2023-09-25T07:48:36.925533Z"}, {"symbol": "MATIC/USD", "side": "buy", "price": "0.5147", "qty": "1136.19677815", "ord_type": "limit", "trade_id": 4665847, "timestamp": "2023-09-25T07:49:36.925603Z"}]}'


def test_kraken_ticker_floats_stay_exact() -> None:
    [event] = parse("kraken", "ticker", KR_TICKER)
    assert isinstance(event, PriceEvent)
    assert (event.symbol, event.bid, event.bid_size, event.price, event.change_24h_pct) == (
        "ALGO-USD",
        Decimal("0.10025"),
        Decimal("740.0"),
        Decimal("0.10035"),
        Decimal("-0.17"),
    )
    assert b'"bid":"0.10025"' in event.to_json()


def test_kraken_ticker_without_last_trade_has_no_price() -> None:
    frame = KR_TICKER.replace('"last": 0.10035, ', "")
    [event] = parse("kraken", "ticker", frame)
    assert event.price is None and event.bid == Decimal("0.10025")


def test_kraken_trades_accept_numbers_or_strings_and_split() -> None:
    a, b = parse("kraken", "trade", KR_TRADE)
    assert isinstance(a, PriceEvent) and isinstance(b, PriceEvent)
    assert (a.symbol, a.asset_id, a.price, a.size, a.trade_id) == (
        "MATIC-USD",
        "matic-network",
        Decimal("0.5147"),
        Decimal("6423.46326"),
        "4665846",
    )
    assert b.size == Decimal("1136.19677815")


def test_kraken_xbt_means_btc() -> None:
    frame = KR_TRADE.replace("MATIC/USD", "XBT/USD")
    a, _ = parse("kraken", "trade", frame)
    assert (a.symbol, a.asset_id) == ("BTC-USD", "bitcoin")


@pytest.mark.parametrize(
    "frame",
    [
        '{"channel": "heartbeat"}',
        '{"channel": "status", "data": [{"api_version": "v2", "connection_id": 13834774380200032777, "system": "online", "version": "2.0.0"}], "type": "update"}',
        '{"method":"subscribe","result":{"channel":"ticker","symbol":"BTC/USD","snapshot":true},"success":true,"time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z","req_id":1}',
        '{"error": "Currency pair not supported XBT/EUR", "method": "subscribe", "success": false, "symbol": "XBT/EUR"}',
        '{"method": "pong", "req_id": 101, "time_in": "2023-09-24T14:10:23.799685Z", "time_out": "2023-09-24T14:10:23.799703Z"}',
    ],
)
def test_kraken_heartbeat_status_and_acks_are_ignored(frame: str) -> None:
    assert parse("kraken", "heartbeat", frame) == []
