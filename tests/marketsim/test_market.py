"""The market model: bounded bursts per wake-up, so high rates never stall the event loop."""

import asyncio

from coinstream.marketsim.market import MAX_BURST, Market, plan_burst


def test_plan_burst_caps_each_wake_up_and_carries_the_rest() -> None:
    """At 60,000 trades/s a 50 ms wake-up owes 3,000 trades: MAX_BURST now, the rest later."""
    count, owed = plan_burst(0.0, 0.05, 60_000.0)
    assert count == MAX_BURST
    assert owed == 3_000 - MAX_BURST
    count, owed = plan_burst(owed, 0.0, 60_000.0)
    assert count == MAX_BURST and owed == 3_000 - 2 * MAX_BURST


def test_plan_burst_keeps_fractions_at_low_rates() -> None:
    """At 30 trades/s, 10 ms wake-ups produce one trade every third or fourth wake-up."""
    owed, produced = 0.0, 0
    for _ in range(100):  # one second
        count, owed = plan_burst(owed, 0.01, 30.0)
        produced += count
    assert produced in (29, 30)  # float rounding may leave the 30th just short
    assert 0.0 <= owed < 1.0


def test_plan_burst_skips_what_is_more_than_the_backlog_behind() -> None:
    """After a 10 s stall at 1,000 trades/s only 1 s of trades is owed, not 10 s."""
    count, owed = plan_burst(0.0, 10.0, 1_000.0, max_burst=10**9)
    assert count == 1_000 and owed == 0.0


async def test_run_at_a_high_rate_keeps_yielding_to_other_tasks() -> None:
    """50,000 trades/s per instrument is more than this machine can generate: other tasks
    still get the loop many times while the market produces trades."""
    market = Market(rate=50_000, seed=1)
    produced = 0
    with market.subscribe({"BTC-USDT"}) as sub:
        task = asyncio.create_task(market.run())
        turns = 0
        loop = asyncio.get_running_loop()
        end = loop.time() + 0.3
        while loop.time() < end:
            await asyncio.sleep(0)
            turns += 1
        task.cancel()
        produced = sub.queue.qsize()
    assert produced > 100
    assert turns > 20
