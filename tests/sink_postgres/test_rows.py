"""Event-to-row mapping (pure)."""

from __future__ import annotations

import json
from decimal import Decimal

from coinstream.sink_postgres.rows import event_rows, instruments_from_prices
from coinstream.sink_postgres.tables import BY_NAME

from . import events


def _as_dict(table_name: str, row: tuple[object, ...]) -> dict[str, object]:
    return dict(zip(BY_NAME[table_name].columns, row, strict=True))


def test_trade_gives_a_price_row_with_exact_values() -> None:
    e = events.trade(1, symbol="PEPE-USDT", price="0.000000012345678901234567")
    [(prices, row)] = event_rows(e)
    assert prices.name == "prices"
    r = _as_dict("prices", row)
    assert r["price"] == Decimal("0.000000012345678901234567")  # never rounded
    assert (r["kind"], r["symbol"], r["base"], r["quote"]) == ("trade", "PEPE-USDT", "PEPE", "USDT")
    assert r["event_time"] == e.event_time and r["event_time"].tzinfo is not None


def test_instruments_are_derived_once_per_venue_pair_with_first_and_last_seen() -> None:
    trades = [
        events.trade(5),
        events.trade(1),
        events.trade(9),
        events.trade(3, source="kraken", symbol="BTC-USD"),
    ]
    rows = [event_rows(e)[0][1] for e in trades]
    out, index = instruments_from_prices(rows)
    by_pair = {(r[0], r[1]): _as_dict("instruments", r) for r in out}
    binance = by_pair[("binance", "BTC-USDT")]
    assert binance["first_seen"] == events.trade(1).event_time
    assert binance["last_seen"] == events.trade(9).event_time
    assert (binance["native_symbol"], binance["base"], binance["quote"]) == (
        "BTCUSDT",
        "BTC",
        "USDT",
    )
    assert ("kraken", "BTC-USD") in by_pair and len(out) == 2
    assert [trades[i].trade_id for i in index] == ["9", "3"]  # origin: the latest price row


def test_consolidated_price_goes_to_its_own_table() -> None:
    [(table, row)] = event_rows(events.consolidated(1))
    assert table.name == "consolidated_prices"
    assert _as_dict(table.name, row)["contributors"] == ["binance", "coinbase"]


def test_metadata_entities_route_to_their_tables() -> None:
    routed = {
        e.entity: event_rows(e)[0][0].name
        for e in (events.asset(0), events.exchange(), events.dex_pair(), events.instrument())
    }
    assert routed == {
        "asset": "assets",
        "exchange": "exchanges",
        "dex_pair": "dex_pairs",
        "instrument": "instruments",
    }


def test_asset_row_keeps_the_whole_event_as_json() -> None:
    e = events.asset(0)
    [(table, row)] = event_rows(e)
    r = _as_dict(table.name, row)
    assert json.loads(str(r["data"]))["name"] == "Bitcoin"
    assert json.loads(str(r["links"])) == {"homepage": ["https://bitcoin.org"]}
    assert r["categories"] == ["Layer 1"]


def test_instrument_metadata_maps_venue_pair_to_assets() -> None:
    [(_, row)] = event_rows(events.instrument())
    r = _as_dict("instruments", row)
    assert (r["venue"], r["symbol"], r["native_symbol"]) == ("kraken", "BTC-USD", "XBT/USD")
    assert (r["base_asset_id"], r["quote_asset_id"]) == ("bitcoin", "usd")


def test_feed_topic_events_are_told_apart() -> None:
    assert event_rows(events.feed_status(1))[0][0].name == "feed_status"
    assert event_rows(events.health(1))[0][0].name == "service_health"
    assert event_rows(events.alert(1))[0][0].name == "alert_events"
    assert event_rows(events.sentiment(1))[0][0].name == "sentiment"
    assert event_rows(events.candle(1))[0][0].name == "candles"
