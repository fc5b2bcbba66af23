"""Venue limits and reconnect policy as pure state machines."""

from __future__ import annotations

import time

from coinstream.ingest_ws.limits import AttemptWindow, ReconnectPolicy, TokenBucket


def test_token_bucket_allows_a_burst_then_paces_at_the_rate() -> None:
    bucket = TokenBucket(rate=5, burst=2)
    waits = [bucket.reserve(0.0) for _ in range(5)]
    assert waits[:2] == [0, 0]
    assert [round(w, 3) for w in waits[2:]] == [0.2, 0.4, 0.6]


def test_token_bucket_refills_over_time() -> None:
    bucket = TokenBucket(rate=4, burst=1)
    assert bucket.reserve(0) == 0
    assert bucket.reserve(0.25) == 0
    assert bucket.reserve(0.3) > 0


def test_attempt_window_defers_attempts_beyond_the_limit() -> None:
    window = AttemptWindow(limit=3, window_s=10)
    assert [window.reserve(0), window.reserve(1), window.reserve(2)] == [0, 0, 0]
    assert window.reserve(3) == 7  # the first attempt leaves the window at t=10
    assert window.reserve(3) == 8
    assert window.reserve(20) == 0


def test_backoff_grows_is_capped_and_jittered() -> None:
    policy = ReconnectPolicy.build(0.1, 1.0, 60, AttemptWindow(1000, 1))
    delays = [policy.delay_after_failure(0) for _ in range(12)]
    assert all(0 <= d <= 1.0 for d in delays)
    assert max(delays[6:]) > 0.3  # grew beyond the initial delay
    assert len({round(d, 6) for d in delays}) > 6  # jittered, not a fixed sequence
    assert policy.failures == 12


def test_backoff_resets_after_a_healthy_period() -> None:
    policy = ReconnectPolicy.build(0.1, 100, reset_after=0.01, attempts=AttemptWindow(1000, 1))
    for _ in range(8):
        policy.delay_after_failure(0)
    assert policy.backoff.attempts == 8
    policy.healthy()
    time.sleep(0.02)
    first = policy.delay_after_failure(0)
    assert first <= 0.1 and policy.backoff.attempts == 1


def test_short_lived_connections_do_not_reset_the_backoff() -> None:
    policy = ReconnectPolicy.build(0.1, 100, reset_after=60, attempts=AttemptWindow(1000, 1))
    for _ in range(5):
        policy.delay_after_failure(0)
        policy.healthy()  # data flowed, but not for long
    assert policy.backoff.attempts == 5


def test_attempt_window_applies_on_top_of_backoff() -> None:
    policy = ReconnectPolicy.build(0.001, 0.001, 60, AttemptWindow(limit=1, window_s=30))
    assert policy.delay_first(0) == 0
    assert policy.delay_after_failure(1) > 28
