"""REST trade history (what ingest-ws fetches to fill a gap) gives the very events the live
trade channels give: same ids, prices, sizes, sides and exchange times."""

from __future__ import annotations

import json
from decimal import Decimal

from coinstream.normalizer.identity import Registry
from coinstream.normalizer.parsers import binance, coinbase, kraken

from .normalizer_helpers import env, wire

BINANCE_REST = [
    {"id": 28457, "price": "4.00000100", "qty": "12.00000000", "quoteQty": "48.000012",
     "time": 1499865549590, "isBuyerMaker": True, "isBestMatch": True},
    {"id": 28458, "price": "4.00000200", "qty": "1.00000000", "quoteQty": "4.000002",
     "time": 1499865549591, "isBuyerMaker": False, "isBestMatch": True},
]  # fmt: skip
BINANCE_WS = {
    "stream": "bnbbtc@trade",
    "data": {"e": "trade", "E": 1499865549590, "s": "BNBBTC", "t": 28457, "p": "4.00000100",
             "q": "12.00000000", "T": 1499865549590, "m": True, "M": True},
}  # fmt: skip
COINBASE_REST = {
    "trades": [
        {"trade_id": "995098663", "product_id": "BTC-USD", "price": "68923.67", "size": "0.00064",
         "time": "2026-04-07T00:28:58.544778Z", "side": "SELL", "bid": "", "ask": "",
         "exchange": "coinbase"},
        {"trade_id": "995098662", "product_id": "BTC-USD", "price": "68923.67",
         "size": "0.00123858", "time": "2026-04-07T00:28:58.250358Z", "side": "SELL", "bid": "",
         "ask": "", "exchange": "coinbase"},
    ],
    "best_bid": "68923.66",
    "best_ask": "68923.67",
}  # fmt: skip
COINBASE_WS = {
    "channel": "market_trades", "client_id": "", "timestamp": "2026-04-07T00:28:58.6Z",
    "sequence_num": 7, "events": [{"type": "update", "trades": [COINBASE_REST["trades"][0]]}],
}  # fmt: skip
KRAKEN_REST = (
    '{"error":[],"result":{"XXBTZUSD":[["30243.40000","0.34507674",1688669597.8277369,"b","m",'
    '"",61044952],["30243.30000","0.00376960",1688669598.2804112,"s","l","",61044953]],'
    '"last":"1688671969993150842"}}'
)
KRAKEN_WS = {
    "channel": "trade", "type": "update",
    "data": [{"symbol": "BTC/USD", "side": "buy", "price": 30243.4, "qty": 0.34507674,
              "ord_type": "market", "trade_id": 61044952,
              "timestamp": "2023-07-06T18:53:17.827736Z"}],
}  # fmt: skip


def same(rest: object, live: object) -> None:
    fields = ("event_id", "symbol", "price", "size", "side", "trade_id", "event_time")
    r, w = wire(rest), wire(live)
    assert [getattr(r, f) for f in fields] == [getattr(w, f) for f in fields]


def test_binance_historical_trades_match_the_trade_stream() -> None:
    params = {"symbol": "BNBBTC", "fromId": "28457", "limit": "1000"}
    rest = binance.parse(
        env("binance", "/api/v3/historicalTrades", BINANCE_REST, params=params), Registry()
    )
    live = binance.parse(env("binance", "bnbbtc@trade", BINANCE_WS), Registry())
    assert len(rest) == 2
    same(rest[0], live[0])
    assert (wire(rest[1]).side, wire(rest[1]).trade_id) == ("buy", "28458")


def test_coinbase_market_trades_match_the_trade_channel() -> None:
    channel = coinbase.HISTORY_CHANNEL
    rest = coinbase.parse(
        env("coinbase", channel, COINBASE_REST, params={"limit": 1000}), Registry()
    )
    live = coinbase.parse(env("coinbase", "market_trades", COINBASE_WS), Registry())
    assert [wire(e).trade_id for e in rest] == ["995098663", "995098662"]
    same(rest[0], live[0])


def test_kraken_public_trades_match_the_trade_channel() -> None:
    rest = kraken.parse(env("kraken", "/0/public/Trades", KRAKEN_REST), Registry(), "BTC-USD")
    live = kraken.parse(env("kraken", "trade", json.dumps(KRAKEN_WS)), Registry())
    assert [wire(e).trade_id for e in rest] == ["61044952", "61044953"]
    r, w = wire(rest[0]), wire(live[0])
    assert (r.event_id, r.symbol, r.price, r.size, r.side) == (
        w.event_id, w.symbol, Decimal("30243.40000"), Decimal("0.34507674"), "buy",
    )  # fmt: skip
    # the REST time has 7 fractional digits of seconds, the stream microseconds: same instant
    assert abs((r.event_time - w.event_time).total_seconds()) < 1e-5
