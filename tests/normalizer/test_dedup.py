"""Bounded dedup window."""

from coinstream.normalizer.dedup import DedupWindow


def test_repeats_inside_the_window_are_dropped_and_old_keys_expire() -> None:
    w = DedupWindow(capacity=2)
    assert not w.seen("a")
    assert w.seen("a")
    assert not w.seen("b")
    assert not w.seen("c")  # evicts "a"
    assert not w.seen("a")
    assert len(w) == 2


def test_capacity_zero_disables_dedup() -> None:
    w = DedupWindow(capacity=0)
    assert not w.seen("a") and not w.seen("a")
    assert len(w) == 0


def test_reset_forgets_everything() -> None:
    w = DedupWindow(capacity=5)
    w.seen("a")
    w.reset()
    assert not w.seen("a")
