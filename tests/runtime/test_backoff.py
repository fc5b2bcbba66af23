"""Backoff grows, is capped, is jittered, and resets after a healthy period."""

from coinstream.runtime import Backoff


def test_grows_and_caps_without_jitter() -> None:
    b = Backoff(initial=1, maximum=8, jitter=0)
    assert [b.next_delay() for _ in range(6)] == [1, 2, 4, 8, 8, 8]


def test_full_jitter_stays_within_bounds() -> None:
    b = Backoff(initial=1, maximum=4, jitter=1.0)
    delays = [b.next_delay() for _ in range(50)]
    assert all(0 <= d <= 4 for d in delays)
    assert len(set(delays)) > 10


def test_resets_only_after_healthy_period() -> None:
    b = Backoff(initial=1, maximum=8, jitter=0, reset_after=0)
    b.next_delay(), b.next_delay()
    b.succeeded()
    assert b.next_delay() == 1
    b2 = Backoff(initial=1, maximum=8, jitter=0, reset_after=3600)
    b2.next_delay(), b2.next_delay()
    b2.succeeded()
    assert b2.next_delay() == 4
