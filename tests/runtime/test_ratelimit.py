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


def test_scaled_limits_of_disjoint_owners_never_add_up_to_more_than_the_budget() -> None:
    from coinstream.runtime.ratelimit import scaled_limit

    assert scaled_limit(30, 4, 4) == 30  # one owner of everything: the whole budget
    assert scaled_limit(30, 0, 4) == 0
    assert scaled_limit(30, 3, 0) == 30  # nothing to split
    for limit in (1, 7, 30, 333):
        for total in range(1, 14):
            for owned in range(total + 1):
                assert (
                    scaled_limit(limit, owned, total) + scaled_limit(limit, total - owned, total)
                    <= limit
                )
            split = [1] * total  # one job each
            assert sum(scaled_limit(limit, n, total) for n in split) <= limit


def test_lower_share_applies_at_once_and_a_higher_one_after_the_hold() -> None:
    budget = RateBudget.per_minute(10, window_s=10.0)
    budget.rescale(0.0, 1, 2)
    assert budget.limits() == {"calls": 5}
    for t in range(5):
        assert budget.reserve(float(t)) == 0
    assert budget.reserve(5.0) > 0
    budget.rescale(5.0, 2, 2, hold_s=10.0)  # the other half was someone else's a moment ago
    assert budget.limits() == {"calls": 10}
    assert budget.reserve(6.0) > 0  # still 5 spent + 5 held
    assert budget.remaining(6.0) == {"calls": 0}
    assert budget.reserve(15.0) == 0  # the hold is over and the first spends left
    budget.rescale(15.0, 0, 2)
    assert budget.reserve(16.0) > 0  # no share: no request


def test_two_replicas_trading_shares_never_exceed_the_budget_together() -> None:
    """Shares move back and forth at random (rebalances); every window of the combined log
    holds at most the configured budget."""
    rng = random.Random(3)
    window = 1.0
    a, b = RateBudget.per_minute(8, window), RateBudget.per_minute(8, window)
    total = 4
    owned_a = 4
    a.rescale(0.0, owned_a, total)
    b.rescale(0.0, 0, total)
    granted: list[float] = []
    now = 0.0
    next_move = 0.5
    while now < 30.0:
        now += rng.expovariate(80)
        if now >= next_move:  # revoke first (both lose), then assign (holds on growth)
            new_a = rng.randint(0, total)
            a.rescale(now, min(owned_a, new_a), total)
            b.rescale(now, min(total - owned_a, total - new_a), total)
            a.rescale(now, new_a, total, hold_s=window)
            b.rescale(now, total - new_a, total, hold_s=window)
            owned_a = new_a
            next_move = now + rng.uniform(0.1, 1.5)
        for budget in (a, b):
            if budget.reserve(now) == 0:
                granted.append(now)
    assert len(granted) >= 8 * 15  # the budget is used
    for i, start in enumerate(granted):
        assert len([t for t in granted[i:] if t < start + window]) <= 8
