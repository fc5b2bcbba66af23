"""Event-time candles: OHLCV, VWAP, watermark, grace, amendments and deterministic replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from coinstream.normalizer.candles import CandleBook
from coinstream.schemas import CandleEvent

M0 = datetime(2024, 4, 7, 16, 50, tzinfo=UTC)
TP = ("raw", 0)


def at(seconds: float) -> datetime:
    return M0 + timedelta(seconds=seconds)


def feed(book: CandleBook, trades: list[tuple[float, str, str]]) -> list[CandleEvent]:
    out: list[CandleEvent] = []
    for i, (t, price, size) in enumerate(trades):
        out += book.add("binance", "BTC-USDT", at(t), Decimal(price), Decimal(size), at(t), TP, i)
    return out


def test_candle_closes_when_watermark_passes_and_has_exact_ohlcv_vwap() -> None:
    book = CandleBook(60, 10)
    out = feed(
        book,
        [
            (1, "100", "1"),
            (30, "110", "2"),
            (20, "90", "1"),
            (59.5, "105", "0.5"),
            (61, "106", "1"),
        ],
    )
    [c] = out
    assert (c.open, c.high, c.low, c.close) == (
        Decimal(100),
        Decimal(110),
        Decimal(90),
        Decimal(105),
    )
    assert (c.volume, c.quote_volume, c.trade_count) == (Decimal("4.5"), Decimal("462.5"), 4)
    assert c.vwap == Decimal("462.5") / Decimal("4.5")
    assert (c.open_time, c.close_time, c.revision, c.final, c.source) == (
        M0,
        at(60),
        0,
        False,
        "coinstream",
    )


def test_late_trade_within_grace_amends_same_candle_with_next_revision() -> None:
    book = CandleBook(60, 10)
    first = feed(book, [(10, "100", "1"), (61, "101", "1")])
    amended = feed(
        book, [(50, "120", "1")]
    )  # late (watermark 61 s) but before close + grace (70 s)
    assert first[0].event_id == amended[0].event_id
    assert (amended[0].revision, amended[0].high, amended[0].trade_count) == (1, Decimal(120), 2)
    assert book.amended == 1


def test_final_revision_after_grace_and_later_trades_are_counted_not_applied() -> None:
    book = CandleBook(60, 10, revise_within_s=0)
    out = feed(book, [(10, "100", "1"), (61, "101", "1"), (71, "102", "1")])
    assert [(c.open_time, c.revision, c.final) for c in out] == [(M0, 0, False), (M0, 1, True)]
    assert feed(book, [(30, "999", "1")]) == []
    assert book.too_late == 1


def test_a_trade_beyond_grace_revises_the_final_candle_within_the_horizon() -> None:
    """A backfilled trade for a minute already final: a new revision, still final."""
    book = CandleBook(60, 10, revise_within_s=600)
    out = feed(book, [(10, "100", "1"), (61, "101", "1"), (71, "102", "1"), (200, "103", "1")])
    assert (out[1].open_time, out[1].revision, out[1].final) == (M0, 1, True)
    [revised] = feed(book, [(30, "99", "2")])
    assert (revised.event_id, revised.revision, revised.final) == (out[0].event_id, 2, True)
    assert (revised.trade_count, revised.low, revised.volume) == (2, Decimal(99), Decimal(3))
    assert book.revised == 1 and book.too_late == 0


def test_revisions_stop_at_the_horizon_and_at_what_this_process_built() -> None:
    book = CandleBook(60, 10, revise_within_s=120)
    feed(book, [(130, "100", "1"), (200, "101", "1"), (400, "102", "1")])
    assert feed(book, [(10, "1", "1")]) == []  # before the first minute this process built
    assert feed(book, [(135, "1", "1")]) == []  # minute 2 closed at 180: 400 is past 180 + 120
    [c] = feed(book, [(290, "1", "1")])  # minute 4 had no trade: final at once, revision 0
    assert (c.open_time, c.revision, c.final, c.trade_count) == (at(240), 0, True, 1)
    assert book.too_late == 2


def test_grace_zero_emits_one_final_candle() -> None:
    book = CandleBook(60, 0)
    out = feed(book, [(10, "100", "1"), (60, "101", "1")])
    assert [(c.revision, c.final) for c in out] == [(0, True)]


def test_replaying_the_same_trades_gives_identical_events() -> None:
    trades = [
        (1, "100", "1"),
        (61, "101", "2"),
        (30, "99", "1"),
        (75, "103", "1"),
        (125, "104", "1"),
    ]
    a, b = feed(CandleBook(60, 10), trades), feed(CandleBook(60, 10), trades)
    assert [e.to_json() for e in a] == [e.to_json() for e in b]
    assert len({(e.event_id, e.revision) for e in a}) == len(a)


def test_floor_is_the_first_offset_of_the_oldest_open_candle() -> None:
    book = CandleBook(60, 10)
    feed(book, [(1, "1", "1"), (2, "1", "1"), (61, "1", "1")])
    assert book.floor(TP) == 0
    book.add(
        "binance", "BTC-USDT", at(75), Decimal(1), Decimal(1), at(75), TP, 3
    )  # finalizes minute 0
    assert book.floor(TP) == 2
    assert book.floor(("other", 0)) is None


def test_late_trade_opening_a_missed_minute_within_grace_is_emitted_at_once() -> None:
    book = CandleBook(60, 70)
    feed(book, [(10, "100", "1"), (125, "101", "1")])  # minute 0 closed, minute 1 had no trades
    [c] = feed(book, [(70, "99", "1")])  # minute 1 closed by the watermark, still inside grace
    assert (c.open_time, c.revision, c.trade_count, c.final) == (at(60), 0, 1, False)


def test_a_trade_dated_in_the_future_cannot_move_the_watermark() -> None:
    """One record from 2100 (received now) does not make later real trades "too late"."""
    book = CandleBook(60, 10, lead_s=2)
    feed(book, [(1, "100", "1")])
    book.add("binance", "BTC-USDT", datetime(2100, 1, 1, tzinfo=UTC), Decimal(1), Decimal(1),
             at(2), TP, 1)  # fmt: skip
    out = feed(book, [(30, "101", "1"), (59, "102", "1"), (61, "103", "1")])
    assert book.too_late == 0
    [c] = out
    assert (c.open_time, c.trade_count, c.close) == (M0, 3, Decimal(102))


def test_watermark_still_follows_event_time_when_receipt_is_later() -> None:
    """Replays and backfills (received long after the trade) close candles by event time."""
    book = CandleBook(60, 10, lead_s=2)
    late = at(3600)
    out: list[CandleEvent] = []
    for i, t in enumerate([1, 30, 61]):
        out += book.add("binance", "BTC-USDT", at(t), Decimal(100), Decimal(1), late, TP, i)
    assert [c.open_time for c in out] == [M0]
