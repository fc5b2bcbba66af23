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


def test_a_million_attempts_stay_capped_and_never_overflow() -> None:
    """A dependency down for days: the delay stays at the maximum, it never raises."""
    b = Backoff(initial=0.2, maximum=5.0, jitter=0)
    delays = [b.next_delay() for _ in range(1_000_000)]
    assert delays[:3] == [0.2, 0.4, 0.8]
    assert max(delays) == 5.0
    assert delays[-1] == 5.0 and b.attempts == 1_000_000


def test_jittered_delays_stay_within_bounds_after_a_million_attempts() -> None:
    b = Backoff(initial=0.5, maximum=30.0)
    assert all(0 <= b.delay_for(n) <= 30.0 for n in (1_000, 1_023, 1_024, 10**6, 10**12))


def test_degenerate_settings_give_bounded_delays() -> None:
    assert Backoff(initial=0, maximum=5, jitter=0).delay_for(10**6) == 0
    assert Backoff(initial=3, maximum=5, factor=1, jitter=0).delay_for(10**6) == 3
    assert Backoff(initial=9, maximum=5, jitter=0).delay_for(0) == 5
