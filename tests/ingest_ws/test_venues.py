"""Venue protocols without I/O: shard plans, subscribe messages, frame classification."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coinstream.ingest_ws.errors import ConfigError, UnknownSymbolError
from coinstream.ingest_ws.frames import (
    CONNECTION_SCOPE,
    CONTROL,
    DATA,
    ERROR,
    HEARTBEAT,
    PONG,
    SHUTDOWN,
    UNKNOWN,
    iso_to_ms,
)
from coinstream.ingest_ws.venues import build_protocol
from coinstream.ingest_ws.venues.binance import BinanceProtocol, BinanceSettings
from coinstream.ingest_ws.venues.coinbase import CoinbaseProtocol, CoinbaseSettings
from coinstream.ingest_ws.venues.kraken import KrakenProtocol, KrakenSettings


def binance(**kw: Any) -> BinanceProtocol:
    return BinanceProtocol(BinanceSettings(url="ws://sim/binance", **kw))


# -- Binance -------------------------------------------------------------------------------


def test_binance_streams_go_in_the_combined_stream_url() -> None:
    (plan,) = binance(symbols=["BTC-USDT"], channels=["trade", "bookTicker"]).plan()
    assert plan.url == "ws://sim/binance/stream?streams=btcusdt@trade/btcusdt@bookTicker"
    assert plan.subscribe == ()
    assert plan.streams == (("trade", "BTC-USDT"), ("bookTicker", "BTC-USDT"))


def test_binance_aliases_and_all_five_channels() -> None:
    p = binance(
        symbols=["ETH-USDT"], channels=["trade", "aggTrade", "bookTicker", "24hrTicker", "kline_1m"]
    )
    (plan,) = p.plan()
    assert plan.url.endswith(
        "streams=ethusdt@trade/ethusdt@aggTrade/ethusdt@bookTicker/ethusdt@ticker/ethusdt@kline_1m"
    )


def test_binance_shards_at_the_stream_limit_and_subscribes_the_rest() -> None:
    symbols = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "XRP-USDT", "ADA-USDT"]
    p = binance(
        symbols=symbols,
        channels=["trade", "bookTicker"],
        max_streams_per_connection=4,
        url_max_streams=3,
    )
    plans = p.plan()
    assert [len(pl.streams) for pl in plans] == [4, 4, 2]
    assert plans[0].symbols == ("BTC-USDT", "ETH-USDT")
    first = plans[0]
    assert first.url.count("@") == 3
    (sub,) = first.subscribe
    assert json.loads(sub)["method"] == "SUBSCRIBE"
    assert json.loads(sub)["params"] == ["ethusdt@bookTicker"]


def test_binance_unknown_channel_or_symbol_fails_at_start() -> None:
    with pytest.raises(ConfigError, match="depth"):
        binance(symbols=["BTC-USDT"], channels=["depth"])
    with pytest.raises(UnknownSymbolError, match="BTC-USD"):
        binance(symbols=["BTC-USD"])


def test_binance_trade_frame_from_the_docs() -> None:
    p = binance(symbols=["BNB-BTC"])
    text = json.dumps(
        {
            "stream": "bnbbtc@trade",
            "data": {
                "e": "trade",
                "E": 1672515782136,
                "s": "BNBBTC",
                "t": 12345,
                "p": "0.001",
                "q": "100",
                "T": 1672515782136,
                "m": True,
                "M": True,
            },
        }
    )
    f = p.classify(text)
    assert (f.kind, f.channel, f.symbol) == (DATA, "bnbbtc@trade", "BNB-BTC")
    assert f.streams == (("trade", "BNB-BTC"),)
    assert f.seq == (("trade:BNB-BTC", 12345),)
    assert f.exchange_ms == 1672515782136
    assert p.key_for(f) == b"binance:BNB-BTC"


def test_binance_captured_frames_classify_by_stream() -> None:
    p = binance(symbols=["BTC-USDT"], extra_symbols=[])
    book = '{"stream":"nknusdt@bookTicker","data":{"u":499869768,"s":"NKNUSDT","b":"0.35210000","B":"672.00000000","a":"0.35260000","A":"3199.00000000"}}'
    f = p.classify(book)
    assert (f.kind, f.symbol, f.seq, f.exchange_ms) == (DATA, "NKN-USDT", (), None)
    agg = '{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}'
    assert p.classify(agg).seq == (("aggTrade:NKN-USDT", 15683430),)
    kline = '{"stream":"nknusdt@kline_1m","data":{"e":"kline","E":1633998523963,"s":"NKNUSDT","k":{"t":1633998480000}}}'
    assert p.classify(kline).streams == (("kline_1m", "NKN-USDT"),)


def test_binance_control_error_and_shutdown_frames() -> None:
    p = binance()
    assert p.classify('{"result": null, "id": 1}').kind == CONTROL
    assert p.classify('{"code": 2, "msg": "Invalid request", "id": 3}').kind == ERROR
    shutdown = '{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}'
    assert p.classify(shutdown).kind == SHUTDOWN
    assert p.classify('{"e":"serverShutdown","E":1770123456789}').kind == SHUTDOWN
    assert p.classify("not json").kind == UNKNOWN


# -- Coinbase ------------------------------------------------------------------------------

TICKER = '{"channel":"ticker","client_id":"","timestamp":"2022-11-22T04:23:54.618364894Z","sequence_num":0,"events":[{"type":"snapshot","tickers":[{"type":"ticker","product_id":"BTC-USD","price":"15801.22","volume_24_h":"39927.87557223","low_24_h":"15460","high_24_h":"16257","low_52_w":"15460","high_52_w":"59526.51","price_percent_chg_24_h":"-2.32280685270057"}]}]}'
HEARTBEAT_MSG = '{"channel": "heartbeats", "client_id": "", "timestamp": "2023-06-23T20:31:26.122969572Z", "sequence_num": 7, "events": [{"current_time": "2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105", "heartbeat_counter": "3049"}]}'


def coinbase(**kw: Any) -> CoinbaseProtocol:
    return CoinbaseProtocol(CoinbaseSettings(url="ws://sim/coinbase", **kw))


def test_coinbase_sends_one_channel_per_subscribe_message() -> None:
    (plan,) = coinbase(symbols=["BTC-USD", "ETH-USD"]).plan()
    msgs = [json.loads(m) for m in plan.subscribe]
    assert [m["channel"] for m in msgs] == ["ticker", "market_trades", "heartbeats"]
    assert all(
        m == {"type": "subscribe", "product_ids": ["BTC-USD", "ETH-USD"], "channel": m["channel"]}
        for m in msgs
    )
    assert ("heartbeats", "BTC-USD") not in plan.streams  # heartbeats are not a data stream
    assert ("market_trades", "ETH-USD") in plan.streams


def test_coinbase_ticker_and_heartbeat_frames() -> None:
    p = coinbase(symbols=["BTC-USD"])
    f = p.classify(TICKER)
    assert (f.kind, f.channel, f.symbol, f.streams) == (
        DATA,
        "ticker",
        "BTC-USD",
        (("ticker", "BTC-USD"),),
    )
    assert f.seq == ((CONNECTION_SCOPE, 0),)
    assert f.exchange_ms == 1669091034618
    h = p.classify(HEARTBEAT_MSG)
    assert (h.kind, h.channel, h.seq) == (HEARTBEAT, "heartbeats", ((CONNECTION_SCOPE, 7),))
    assert p.key_for(h) == b"coinbase:heartbeats"


def test_coinbase_market_trades_subscriptions_and_errors() -> None:
    p = coinbase(symbols=["ETH-USD"])
    trades = {
        "channel": "market_trades",
        "client_id": "",
        "timestamp": "2019-08-14T20:42:27.265Z",
        "sequence_num": 3,
        "events": [
            {
                "type": "update",
                "trades": [
                    {
                        "trade_id": "000000000",
                        "product_id": "ETH-USD",
                        "price": "1260.01",
                        "size": "0.3",
                        "side": "BUY",
                        "time": "2019-08-14T20:42:27.265Z",
                    }
                ],
            }
        ],
    }
    f = p.classify(json.dumps(trades))
    assert (f.kind, f.symbol) == (DATA, "ETH-USD")
    subs = '{"channel":"subscriptions","client_id":"","timestamp":"2023-02-09T20:32:55.000Z","sequence_num":1,"events":[{"subscriptions":{"market_trades":["ETH-USD"]}}]}'
    assert p.classify(subs).kind == CONTROL
    assert p.classify('{"type":"error","message":"Failed to subscribe"}').kind == ERROR


# -- Kraken --------------------------------------------------------------------------------


def kraken(**kw: Any) -> KrakenProtocol:
    return KrakenProtocol(KrakenSettings(url="ws://sim/kraken/v2", **kw))


def test_kraken_subscribes_each_channel_with_snapshot_and_req_id() -> None:
    (plan,) = kraken(symbols=["BTC-USD", "ETH-USD"]).plan()
    msgs = [json.loads(m) for m in plan.subscribe]
    assert [m["params"]["channel"] for m in msgs] == ["ticker", "trade"]
    assert all(m["params"]["symbol"] == ["BTC/USD", "ETH/USD"] for m in msgs)
    assert all(m["params"]["snapshot"] is True and m["method"] == "subscribe" for m in msgs)
    assert len({m["req_id"] for m in msgs}) == 2


def test_kraken_trade_frame_from_the_docs() -> None:
    p = kraken(symbols=["BTC-USD"], extra_symbols=["MATIC-USD"])
    text = '{"channel": "trade", "type": "snapshot", "data": [{"symbol": "MATIC/USD", "side": "buy", "price": 0.5147, "qty": 6423.46326, "ord_type": "limit", "trade_id": 4665846, "timestamp": "2023-09-25T07:48:36.925533Z"}, {"symbol": "MATIC/USD", "side": "buy", "price": 0.5147, "qty": 1136.19677815, "ord_type": "limit", "trade_id": 4665847, "timestamp": "2023-09-25T07:49:36.925603Z"}]}'
    f = p.classify(text)
    assert (f.kind, f.channel, f.symbol) == (DATA, "trade", "MATIC-USD")
    assert f.seq == (("trade:MATIC-USD", 4665846), ("trade:MATIC-USD", 4665847))
    assert f.exchange_ms == iso_to_ms("2023-09-25T07:49:36.925603Z")


def test_kraken_status_heartbeat_pong_ack_and_error() -> None:
    p = kraken()
    status = '{"channel": "status", "data": [{"api_version": "v2", "connection_id": 13834774380200032777, "system": "online", "version": "2.0.0"}], "type": "update"}'
    assert p.classify(status).kind == CONTROL
    assert p.classify(status).detail == "system=online"
    assert p.classify(status.replace("online", "maintenance")).detail == "system=maintenance"
    assert p.classify('{"channel": "heartbeat"}').kind == HEARTBEAT
    pong = '{"method": "pong", "req_id": 101, "time_in": "2023-09-24T14:10:23.799685Z", "time_out": "2023-09-24T14:10:23.799703Z"}'
    assert p.classify(pong).kind == PONG
    ack = '{"method":"subscribe","result":{"channel":"ticker","symbol":"BTC/USD","snapshot":true},"success":true,"time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z","req_id":1}'
    assert p.classify(ack).kind == CONTROL
    err = '{"error": "Currency pair not supported XBT/EUR", "method": "subscribe", "success": false, "symbol": "XBT/EUR"}'
    assert p.classify(err).kind == ERROR
    assert json.loads(p.app_ping() or "{}")["method"] == "ping"


def test_iso_to_ms_truncates_nanoseconds() -> None:
    assert iso_to_ms("2023-02-09T20:30:37.167359596Z") == 1675974637167
    assert iso_to_ms("garbage") is None


def test_build_protocol_by_name() -> None:
    assert build_protocol("kraken", KrakenSettings()).name == "kraken"


@pytest.mark.parametrize(
    "data",
    [
        '{"e":"trade","E":1700000000123,"s":"BTCUSDT","t":1000001,"p":"67000.10000000","q":"0.01000000","T":1700000000123,"m":true,"M":true}',
        '{"e":"aggTrade","E":1700000000123,"s":"BTCUSDT","a":77,"p":"1.0","q":"2.0","f":1,"l":1,"T":1700000000123,"m":false,"M":true}',
        '{"u":5000001,"s":"BTCUSDT","b":"1.0","B":"2.0","a":"1.1","A":"3.0"}',
        '{"e":"kline","E":1700000000123,"s":"BTCUSDT","k":{"t":1699999980000,"T":1700000039999,"s":"BTCUSDT","i":"1m"}}',
    ],
)
def test_binance_fast_path_agrees_with_the_full_parse(data: str) -> None:
    """Compact frames of known streams skip the JSON parse with the same result."""
    p = binance(symbols=["BTC-USDT"], channels=["trade", "aggTrade", "bookTicker", "kline_1m"])
    kind = {"trade": "trade", "aggTrade": "aggTrade", "kline": "kline_1m"}.get(
        json.loads(data).get("e", ""), "bookTicker"
    )
    text = f'{{"stream":"btcusdt@{kind}","data":{data}}}'
    parsed = p._parse(text)
    assert p._fast(text) == parsed  # route cached by the parse above
    assert p.classify(text) == parsed


class _PluginSettings(BinanceSettings):
    """Settings of a venue that exists only as a plugin (for the registry test)."""

    url: str = "wss://plugin.invalid"


class PluginProtocol(BinanceProtocol):
    """A venue added without touching ingest-ws: one class, one entry point."""

    name = "plugin-venue"
    settings_class = _PluginSettings


def test_venues_are_loaded_from_the_entry_point_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry is the ``coinstream.ingest_ws.venues`` group: the installed built-ins come from it,
    and a venue registered there is built, with its settings read from INGEST_WS_<VENUE>__*."""
    from importlib.metadata import EntryPoint, entry_points

    from coinstream.ingest_ws import venues
    from coinstream.ingest_ws.app import build_protocols
    from coinstream.ingest_ws.settings import installed_settings_class

    installed = {ep.name: ep.value for ep in entry_points(group=venues.ENTRY_POINT_GROUP)}
    assert installed["kraken"] == "coinstream.ingest_ws.venues.kraken:KrakenProtocol"
    assert set(venues.protocols()) >= {"binance", "coinbase", "kraken"}

    plugin = EntryPoint("plugin-venue", f"{__name__}:PluginProtocol", venues.ENTRY_POINT_GROUP)

    def fake_entry_points(group: str) -> list[EntryPoint]:
        return [*entry_points(group=group), plugin] if group == venues.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(venues, "entry_points", fake_entry_points)
    venues.protocols.cache_clear()
    try:
        monkeypatch.setenv("INGEST_WS_PLUGIN_VENUE__URL", "ws://127.0.0.1:9/plugin")
        monkeypatch.setenv("INGEST_WS_PLUGIN_VENUE__SYMBOLS", '["ETH-USDT"]')
        monkeypatch.setenv("INGEST_WS_PLUGIN_VENUE__EXTRA_SYMBOLS", '["ETH-USDT"]')
        monkeypatch.setenv("INGEST_WS_COINBASE__ENABLED", "false")
        settings = installed_settings_class()()  # one field per venue, the plugin's too
        assert settings.venues()["plugin-venue"].url == "ws://127.0.0.1:9/plugin"
        built = {p.name: p for p in build_protocols(settings)}
        assert set(built) == {"binance", "kraken", "plugin-venue"}
        plan = built["plugin-venue"].plan()[0]
        assert plan.url.startswith(
            "ws://127.0.0.1:9/plugin/stream?streams=ethusdt@trade"
        )  # its form
        with pytest.raises(ConfigError, match="unknown venue"):
            build_protocol("nowhere", BinanceSettings())
    finally:
        venues.protocols.cache_clear()
