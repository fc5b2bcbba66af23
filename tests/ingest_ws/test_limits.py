"""Venue limits and reconnect policy as pure state machines."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from coinstream.ingest_ws.limits import (
    AttemptWindow,
    CreditBudget,
    ReconnectPolicy,
    TokenBucket,
    next_utc_midnight,
)


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


def test_credit_budget_is_reached_once_at_the_exact_message_count() -> None:
    """0.1 credit a message and 2 credits a day: the 20th message reaches it (no float drift)."""
    budget = CreditBudget(per_message=0.1, daily=2.0)
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert [budget.bill(1, now) for _ in range(19)] == [False] * 19
    assert budget.bill(1, now) is True
    assert budget.exhausted(now) and budget.bill(5, now) is False  # said once
    assert budget.used == 2.5 and budget.remaining == 0


def test_credit_budget_starts_again_on_the_next_utc_day() -> None:
    budget = CreditBudget(per_message=0.025, daily=1.0)
    day1 = datetime(2026, 6, 1, 23, 59, tzinfo=UTC)
    assert budget.bill(40, day1) is True
    assert budget.exhausted(day1)
    assert next_utc_midnight(day1) == datetime(2026, 6, 2, tzinfo=UTC)
    day2 = datetime(2026, 6, 2, 0, 0, 1, tzinfo=UTC)
    assert not budget.exhausted(day2) and budget.used == 0
    assert budget.total_messages == 40


def test_credit_accounting_without_a_budget_never_stops() -> None:
    budget = CreditBudget(per_message=0.1)
    assert budget.bill(10**6, datetime(2026, 6, 1, tzinfo=UTC)) is False
    assert budget.remaining is None
