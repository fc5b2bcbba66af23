"""Batch building and in-batch reduction (pure: records are plain objects)."""

from __future__ import annotations

from dataclasses import dataclass

from coinstream.sink_postgres.batch import Batch, TableBatch, reduce_rows

from . import events


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None


def batch_of(*values: bytes | None, topic: str = "t.prices.v1", partition: int = 0) -> Batch:
    b = Batch()
    b.extend([Rec(topic, partition, i, v) for i, v in enumerate(values)])
    return b


def test_in_batch_duplicates_become_one_row() -> None:
    e = events.trade(1)
    b = batch_of(e.to_json(), e.to_json(), e.to_json())
    [prices, instruments] = b.reduced()
    assert len(b.tables["prices"]) == 3
    assert len(prices.rows) == 1 and len(instruments.rows) == 1
    assert prices.origins[0].offset == 2  # the last copy read


def test_higher_revision_wins_whatever_the_order() -> None:
    for revs in ((0, 2, 1), (2, 1, 0), (1, 0, 2)):
        b = batch_of(*(events.candle(0, revision=r, close=str(100 + r)).to_json() for r in revs))
        [candles] = b.reduced()
        [row] = candles.rows
        assert row[candles.table.index("revision")] == 2
        assert str(row[candles.table.index("close")]) == "102"


def test_final_candle_beats_same_revision_not_final() -> None:
    b = batch_of(events.candle(0, final=True).to_json(), events.candle(0, final=False).to_json())
    [candles] = b.reduced()
    assert candles.rows[0][candles.table.index("final")] is True


def test_instrument_rows_merge_first_and_last_seen() -> None:
    b = batch_of(*(events.trade(i).to_json() for i in (5, 1, 9)))
    instruments = next(tb for tb in b.reduced() if tb.table.name == "instruments")
    [row] = instruments.rows
    t = instruments.table
    assert row[t.index("first_seen")] == events.trade(1).event_time
    assert row[t.index("last_seen")] == events.trade(9).event_time


def test_current_state_rows_are_sorted_by_key_time_series_keep_arrival_order() -> None:
    symbols = ("SOL-USDT", "BTC-USDT", "ETH-USDT")
    b = batch_of(
        *(events.trade(i, symbol=s).to_json() for i, s in zip((3, 1, 2), symbols, strict=True))
    )
    prices, instruments = b.reduced()
    assert [r[instruments.table.index("symbol")] for r in instruments.rows] == sorted(symbols)
    assert [r[prices.table.index("symbol")] for r in prices.rows] == list(symbols)


def test_undecodable_records_are_rejected_with_a_reason_and_still_committed() -> None:
    b = batch_of(b"{not json", b'{"type": "price"}', None, events.trade(1).to_json())
    assert [r.record.offset for r in b.rejected] == [0, 1, 2]
    assert all(r.reason.startswith("not a canonical event") for r in b.rejected)
    assert "event_id" in b.rejected[1].reason  # names the missing field
    assert b.offsets == {("t.prices.v1", 0): 4}
    assert len(b) == 4 and len(b.tables["prices"]) == 1


def test_offsets_are_next_offset_per_partition() -> None:
    b = Batch()
    b.extend(
        [Rec("a", 0, 10, events.trade(1).to_json()), Rec("a", 1, 3, events.trade(2).to_json())]
    )
    b.add(Rec("a", 0, 11, events.trade(3).to_json()))
    assert b.offsets == {("a", 0): 12, ("a", 1): 4}


def test_reduce_keeps_distinct_keys_untouched() -> None:
    b = batch_of(*(events.trade(i).to_json() for i in range(50)))
    tb: TableBatch = b.tables["prices"]
    assert len(reduce_rows(tb).rows) == 50


def test_metadata_versions_in_one_batch_are_all_kept_in_order() -> None:
    """Each version of an asset is written (oldest first) so history sees every change."""
    from coinstream.sink_postgres.batch import split_rounds

    v0, v1, v2 = (events.asset(m, description=f"d{m}") for m in (0, 1, 2))
    b = batch_of(v2.to_json(), v0.to_json(), v1.to_json(), v1.to_json())
    [assets] = b.reduced()
    assert len(assets.rows) == 3  # the duplicate v1 collapsed, versions kept
    rounds = split_rounds(assets.table, assets.rows)
    desc = assets.table.index("description")
    assert [[r[desc] for r in part] for part in rounds] == [["d0"], ["d1"], ["d2"]]


def test_non_versioned_tables_are_one_round() -> None:
    from coinstream.sink_postgres.batch import split_rounds

    b = batch_of(*(events.trade(i).to_json() for i in range(5)))
    prices = b.reduced()[0]
    assert split_rounds(prices.table, prices.rows) == [prices.rows]


def test_same_event_id_at_two_times_is_two_rows_and_a_true_duplicate_is_one() -> None:
    """Uniqueness is decided on the whole key (event_time, event_id), not the id alone."""
    a = events.trade(1)
    later = a.model_copy(update={"event_time": events.trade(2).event_time})
    [prices, _] = batch_of(a.to_json(), later.to_json()).reduced()
    assert len(prices.rows) == 2
    [prices, _] = batch_of(a.to_json(), later.to_json(), a.to_json()).reduced()
    assert len(prices.rows) == 2 and len(prices.lines or []) == 2
    assert [o.offset for o in prices.origins] == [2, 1]
