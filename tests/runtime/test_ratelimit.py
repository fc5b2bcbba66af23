"""The rate budget never lets more than N calls (or credits) into any window; pauses hold."""

import random

from coinstream.runtime.ratelimit import RateBudget, SlidingWindow


def test_window_allows_limit_then_reports_wait_until_oldest_expires() -> None:
    w = SlidingWindow("calls", 3, 10.0)
    for t in (0.0, 1.0, 2.0):
        assert w.wait_time(t, 1) == 0.0
        w.record(t, 1)
    assert w.wait_time(5.0, 1) == 5.0  # the call at t=0 leaves the window at t=10
    assert w.remaining(5.0) == 0
    assert w.wait_time(10.0, 1) == 0.0
    assert w.remaining(10.0) == 1


def test_budget_under_random_demand_never_exceeds_limit_in_any_window() -> None:
    rng = random.Random(7)
    budget = RateBudget.per_minute(5, window_s=1.0)
    granted: list[float] = []
    now = 0.0
    while now < 30.0:
        now += rng.expovariate(40)  # 40 requests/s of demand against 5/s of budget
        if budget.reserve(now) == 0:
            granted.append(now)
    assert len(granted) >= 5 * 28  # the budget is used, not just respected
    for i, start in enumerate(granted):
        in_window = [t for t in granted[i:] if t < start + 1.0]
        assert len(in_window) <= 5


def test_credits_window_limits_by_cost_and_both_windows_must_allow() -> None:
    budget = RateBudget.per_minute(100, 60.0, credits=10, credit_window_s=1000.0)
    assert budget.reserve(0.0, cost=4) == 0
    assert budget.reserve(1.0, cost=4) == 0
    wait = budget.reserve(2.0, cost=4)
    assert wait == 998.0  # the first 4 credits leave the daily window at t=1000
    assert budget.remaining(2.0) == {"calls": 98, "credits": 2}


def test_pause_blocks_every_request_until_it_ends_and_never_shortens() -> None:
    budget = RateBudget.per_minute(100)
    budget.pause_until(12.0)
    budget.pause_until(5.0)
    assert budget.reserve(10.0) == 2.0
    assert budget.paused(11.9) and not budget.paused(12.0)
    assert budget.reserve(12.0) == 0.0


def test_cost_above_limit_is_clamped_instead_of_waiting_forever() -> None:
    budget = RateBudget.per_minute(10, credits=3, credit_window_s=100.0)
    assert budget.reserve(0.0, cost=50) == 0.0
    assert budget.reserve(1.0, cost=1) == 99.0
