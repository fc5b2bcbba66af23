"""Pure parts of completeness: checkpoints, missing ranges, each venue's history paging."""

from __future__ import annotations

import orjson

from coinstream.ingest_ws.backfill import missing_ranges
from coinstream.ingest_ws.checkpoints import CheckpointBook, Position
from coinstream.ingest_ws.gaps import GAP, NEW, GapTracker
from coinstream.ingest_ws.venues.base import Backfill
from coinstream.ingest_ws.venues.binance import BinanceProtocol, BinanceSettings
from coinstream.ingest_ws.venues.coinbase import CoinbaseProtocol, CoinbaseSettings
from coinstream.ingest_ws.venues.kraken import KrakenProtocol, KrakenSettings


def test_a_primed_tracker_reports_what_a_restart_missed() -> None:
    gaps = GapTracker(grace_s=0)
    gaps.prime("trade:BTC-USDT", 100, 1_000.0)
    assert gaps.observe("trade:BTC-USDT", 130, 0.0, 1_010.0) == GAP
    [gap] = gaps.expire(1.0)
    assert (gap.first, gap.last, gap.missing, gap.before, gap.after) == (
        101,
        129,
        29,
        1_000.0,
        1_010.0,
    )
    gaps.prime("trade:BTC-USDT", 120, None)  # older than what was seen: ignored
    assert gaps.observe("trade:BTC-USDT", 131, 2.0, 1_011.0) == NEW


def test_checkpoints_advance_only_with_higher_acknowledged_ids() -> None:
    book = CheckpointBook()
    book.acked("binance", {"trade:BTC-USDT": (10, 1.0, b"k")}, 2, 500)
    book.acked("binance", {"trade:BTC-USDT": (7, 2.0, b"k")}, 2, 600)  # an older id
    [(key, value)] = book.drain()
    assert key == b"binance:trade:BTC-USDT"
    assert Position.from_json(value) == Position(10, 1.0, 2, 500)
    assert book.drain() == []  # nothing changed since
    book.open_hole("binance", "trade:BTC-USDT", 3, 5, 0.5, 0.9)
    [(_, value)] = book.drain()
    assert Position.from_json(value).holes == [(3, 5, 0.5, 0.9)]
    book.close_hole("binance", "trade:BTC-USDT", 3, 5)
    [(_, value)] = book.drain()
    assert Position.from_json(value).holes == []


def test_missing_ranges() -> None:
    assert missing_ranges(range(1, 11), {1, 2, 5, 6, 10}) == [(3, 4), (7, 9)]
    assert missing_ranges(range(1, 4), set()) == [(1, 3)]
    assert missing_ranges(range(1, 4), {1, 2, 3}) == []


JOB = Backfill("trade:BTC-USDT", "BTC-USDT", 1_000, 3_499, 1_700_000_000.0, 1_700_000_100.0)
USD = Backfill("trade:BTC-USD", "BTC-USD", 1_000, 3_499, 1_700_000_000.0, 1_700_000_100.0)


def test_binance_pages_by_from_id_until_the_gap_is_covered() -> None:
    venue = BinanceProtocol(BinanceSettings(symbols=["BTC-USDT"]))
    first = venue.history_request(JOB)
    assert first is not None and first.params == {
        "symbol": "BTCUSDT", "fromId": "1000", "limit": "1000",
    }  # fmt: skip
    body = orjson.dumps([{"id": i, "time": 1_700_000_000_000 + i} for i in range(1_000, 2_000)])
    page = venue.history_page(JOB, first, body.decode())
    assert page.next is not None and page.next.params["fromId"] == "2000"
    last = orjson.dumps([{"id": i, "time": 1} for i in range(3_000, 3_500)]).decode()
    assert venue.history_page(JOB, page.next, last).next is None
    agg = Backfill("aggTrade:BTC-USDT", "BTC-USDT", 1, 2, None, 0.0)
    assert venue.history_request(agg) is None  # aggregate ids are another sequence


def test_coinbase_pages_backwards_in_time_while_pages_are_full() -> None:
    venue = CoinbaseProtocol(CoinbaseSettings(symbols=["BTC-USD"]))
    first = venue.history_request(USD)
    assert first is not None and first.path.endswith("/products/BTC-USD/ticker")
    assert first.params["start"] == "1699999999" and first.params["end"] == "1700000102"
    trades = [
        {"trade_id": str(i), "time": "2023-11-14T22:14:10.000000Z"} for i in range(3_499, 2_499, -1)
    ]
    page = venue.history_page(USD, first, orjson.dumps({"trades": trades}).decode())
    assert page.next is not None and int(page.next.params["end"]) < int(first.params["end"])
    assert venue.history_page(USD, page.next, '{"trades": []}').next is None


def test_kraken_follows_last_and_names_pairs_the_rest_way() -> None:
    venue = KrakenProtocol(KrakenSettings(symbols=["BTC-USD"]))
    first = venue.history_request(USD)
    assert first is not None and first.params["pair"] == "XBTUSD"
    rows = [["1", "1", 1_700_000_001.5, "b", "l", "", i] for i in range(1_000, 2_000)]
    body = orjson.dumps({"error": [], "result": {"XXBTZUSD": rows, "last": "1700000001500000000"}})
    page = venue.history_page(USD, first, body.decode())
    assert page.next is not None and page.next.params["since"] == "1700000001500000000"
    error = venue.history_page(USD, first, '{"error": ["EQuery:Unknown asset pair"]}')
    assert error.error is not None and "Unknown asset pair" in error.error
