"""Gap, duplicate and out-of-order detection on sequence ids (pure)."""

from __future__ import annotations

from coinstream.ingest_ws.gaps import DUPLICATE, GAP, LATE, NEW, GapTracker

T = 1_767_225_600.0  # receipt time, epoch seconds


def test_contiguous_ids_are_new_and_produce_no_gap() -> None:
    g = GapTracker(grace_s=1)
    assert [g.observe("k", i, 0, T) for i in range(5)] == [NEW] * 5
    assert g.expire(10) == []


def test_a_jump_is_reported_after_the_grace_period_with_the_missing_range() -> None:
    g = GapTracker(grace_s=1)
    g.observe("trade:BTC-USDT", 10, 0.0, T)
    assert g.observe("trade:BTC-USDT", 14, 0.1, T) == GAP
    assert g.expire(0.5) == []  # still within grace
    (gap,) = g.expire(1.2)
    assert (gap.first, gap.last, gap.missing) == (11, 13, 3)
    assert gap.key == "trade:BTC-USDT"
    assert g.expire(5) == []  # reported once


def test_late_messages_fill_the_gap_and_count_as_out_of_order() -> None:
    g = GapTracker(grace_s=1)
    g.observe("k", 1, 0, T)
    g.observe("k", 4, 0, T)
    assert g.observe("k", 2, 0.2, T) == LATE
    assert g.observe("k", 3, 0.3, T) == LATE
    assert g.expire(2) == []
    assert g.late == 2


def test_partially_filled_gap_reports_what_is_still_missing() -> None:
    g = GapTracker(grace_s=0.5)
    g.observe("k", 1, 0, T)
    g.observe("k", 6, 0, T)
    g.observe("k", 2, 0.1, T)
    (gap,) = g.expire(1)
    assert (gap.first, gap.last, gap.missing) == (3, 5, 3)


def test_repeated_ids_are_duplicates() -> None:
    g = GapTracker()
    g.observe("k", 5, 0, T)
    g.observe("k", 6, 0, T)
    assert g.observe("k", 6, 0, T) == DUPLICATE
    assert g.observe("k", 3, 0, T) == DUPLICATE
    assert g.duplicates == 2


def test_keys_are_independent_and_forget_drops_connection_scoped_ones() -> None:
    g = GapTracker()
    g.observe("*conn1", 100, 0, T)
    g.observe("trade:ETH-USD", 7, 0, T)
    g.forget("*conn1")
    assert g.last("*conn1") is None
    assert g.observe("*conn1", 0, 0, T) == NEW  # a new connection restarts its counter
    assert g.last("trade:ETH-USD") == 7


def test_huge_jump_is_reported_without_tracking_every_id() -> None:
    g = GapTracker(grace_s=0)
    g.observe("k", 0, 0, T)
    g.observe("k", 1_000_001, 0, T)
    (gap,) = g.expire(0)
    assert gap.missing == 1_000_000 and (gap.first, gap.last) == (1, 1_000_000)
