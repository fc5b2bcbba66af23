"""Bounded dedup window and the offsets it holds."""

from coinstream.normalizer.dedup import DedupWindow


def test_repeats_inside_the_window_are_dropped_and_old_keys_expire() -> None:
    w = DedupWindow(capacity=2)
    assert not w.seen("a", ("t", 0), 1)
    assert w.seen("a", ("t", 0), 2)
    assert not w.seen("b", ("t", 0), 3)
    assert not w.seen("c", ("t", 1), 4)  # evicts "a"
    assert not w.seen("a", ("t", 0), 5)
    assert len(w) == 2


def test_floor_is_oldest_offset_still_remembered_per_partition() -> None:
    w = DedupWindow(capacity=3)
    for i, key in enumerate("abcd"):
        w.seen(key, ("t", 0), 10 + i)
    assert w.floor(("t", 0)) == 11
    assert w.floor(("t", 9)) is None


def test_capacity_zero_disables_dedup() -> None:
    w = DedupWindow(capacity=0)
    assert not w.seen("a", ("t", 0), 1) and not w.seen("a", ("t", 0), 2)
    assert w.floor(("t", 0)) is None
