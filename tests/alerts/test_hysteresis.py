"""No flapping: noise around each rule type's threshold makes at most one FIRING and one
RESOLVED per real crossing (pure: events and time in, transitions out)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from coinstream.alerts.engine import Engine, Transition
from coinstream.alerts.rules import parse_rules
from coinstream.schemas import FeedStatusEvent, SentimentEvent, ServiceHealthEvent, deterministic_id

from .alerts_helpers import T0, at, price

Step = tuple[float, Any]  # (seconds after T0, event or None for a clock tick only)


def engine(rule_yaml: str) -> Engine:
    text = (
        "default_receivers: [s]\n"
        "receivers: {s: {type: slack_webhook, url_env: ALERTS_X}}\n"
        "rules:\n  - " + rule_yaml.strip() + "\n"
    )
    return Engine(parse_rules(text))


def run(e: Engine, steps: Iterable[Step]) -> list[str]:
    """Feed the steps with a clock tick after each; the notifications receivers would get."""
    seen: list[Transition] = []
    for t, event in steps:
        if event is not None:
            seen += e.process(event, T0 + t)
        seen += e.tick(T0 + t)
    return [x.status.upper() for x in seen if x.notify]


def noisy(center: float, amplitude: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [center + rng.uniform(-amplitude, amplitude) for _ in range(n)]


def crossings(values: list[float], level: float) -> int:
    return sum(1 for a, b in itertools.pairwise(values) if (a > level) != (b > level))


def test_price_threshold_noise_inside_the_clear_band() -> None:
    """Threshold 100, default band 0.1% (clears at 99.9): ±0.08 around 100 crosses it over a
    hundred times, yet each real move up and down is one FIRING and one RESOLVED."""
    e = engine(
        "{id: x, type: price_threshold, symbols: [A-USDT], direction: above, threshold: 100}"
    )
    noise = noisy(100, 0.08, 300, seed=1)
    assert crossings(noise, 100) > 100
    values = [95.0, *noise, 95.0, *noise, 95.0]
    steps = [(i * 0.1, price("A-USDT", f"{v:.4f}", i * 0.1)) for i, v in enumerate(values)]
    assert run(e, steps) == ["FIRING", "RESOLVED", "FIRING", "RESOLVED"]


def test_price_threshold_below_with_resolve_threshold() -> None:
    e = engine(
        "{id: x, type: price_threshold, symbols: [A-USDT], direction: below, threshold: 100,"
        " resolve_threshold: 101}"
    )
    values = [105.0, *noisy(100.4, 0.5, 200, seed=2), 102.0]
    steps = [(i * 0.1, price("A-USDT", f"{v:.4f}", i * 0.1)) for i, v in enumerate(values)]
    assert run(e, steps) == ["FIRING", "RESOLVED"]


def test_percent_change_hovering_at_the_limit() -> None:
    """5% up within 60 s, resolving under 4%: a price wobbling between +4.5% and +5.5% fires
    once; falling back to +0.5% resolves once."""
    e = engine(
        "{id: pc, type: percent_change, symbols: [A-USDT], window: 60s, percent: 5, direction: up}"
    )
    values = [100.0] * 5 + noisy(105, 0.5, 200, seed=3) + [100.5] * 5
    assert crossings(values, 105) > 50
    steps = [(i * 0.2, price("A-USDT", f"{v:.4f}", i * 0.2)) for i, v in enumerate(values)]
    assert run(e, steps) == ["FIRING", "RESOLVED"]


def test_spread_hovering_at_the_limit() -> None:
    """1% spread, resolving under 0.8%: kraken wobbling 0.9-1.1% above binance fires once."""
    e = engine("{id: sp, type: spread, symbols: [A-USDT], percent: 1, max_age: 10s}")
    steps: list[Step] = []
    t = 0.0
    for v in [100.2] * 3 + noisy(101.0, 0.1, 200, seed=4) + [100.3] * 3:
        steps.append((t, price("A-USDT", "100", t, source="binance")))
        steps.append((t + 0.05, price("A-USDT", f"{v:.4f}", t + 0.05, source="kraken")))
        t += 0.1
    assert run(e, steps) == ["FIRING", "RESOLVED"]


def test_volume_spike_hovering_at_the_factor() -> None:
    """Recent volume wobbling around 3x the baseline (factor 3, resolving at 2.6) fires once
    and resolves once when volume is back to normal."""
    e = engine(
        "{id: vs, type: spike, symbols: [A-USDT], metric: volume, window: 10s, baseline: 600s,"
        " factor: 3, min_samples: 20}"
    )
    rng = random.Random(5)
    steps: list[Step] = []
    for i in range(610):  # baseline: one unit per second
        steps.append((i, price("A-USDT", "100", i, size="1")))
    for i in range(610, 655):  # the ratio crosses 3 eight times, staying above 2.8
        size = f"{2.95 + rng.uniform(-0.9, 0.9):.3f}"
        steps.append((i, price("A-USDT", "100", i, size=size)))
    for i in range(655, 680):  # back to normal
        steps.append((i, price("A-USDT", "100", i, size="1")))
    assert run(e, steps) == ["FIRING", "RESOLVED"]


def _fg(value: int, t: float, source: str = "feargreed") -> SentimentEvent:
    return SentimentEvent(
        event_id=deterministic_id("fg", source, value, t),
        event_time=at(t),
        received_at=at(t),
        source=source,
        subject="market",
        metric="fear_greed",
        value=Decimal(value),
    )


def test_fear_greed_wobbling_on_a_band_boundary() -> None:
    """Fear (<=44) / Neutral (45-55): reports wobbling 44/45 change nothing; a real move into
    Neutral is one FIRING (and RESOLVED on the next report), and so is the way back."""
    e = engine("{id: fg, type: sentiment, mode: band_change}")
    values = [40, 44, 45, 45, 44, 44, 45, 45, 44, 50, 50, 46, 45, 45, 46, 46, 45, 38, 39, 43]
    steps = [(i * 60.0, _fg(v, i * 60.0)) for i, v in enumerate(values)]
    assert run(e, steps) == ["FIRING", "RESOLVED", "FIRING", "RESOLVED"]


def test_fear_greed_point_changes_below_the_limit() -> None:
    e = engine("{id: fg, type: sentiment, mode: change, points: 10}")
    values = [50, 53, 47, 52, 48, 51, 62, 60, 63, 58, 61]
    steps = [(i * 60.0, _fg(v, i * 60.0)) for i, v in enumerate(values)]
    assert run(e, steps) == ["FIRING", "RESOLVED"]


def _feed(status: str, t: float) -> FeedStatusEvent:
    return FeedStatusEvent(
        event_id=deterministic_id("fs", status, t),
        event_time=at(t),
        received_at=at(t),
        source="binance",
        status=status,  # type: ignore[arg-type]
        symbol="BTC-USDT",
    )


def test_feed_status_flapping_faster_than_for() -> None:
    """`for: 10s` (and so `resolve_for: 10s`): stale/connected flapping every 2 s neither
    fires nor, once firing, resolves."""
    e = engine("{id: fs, type: feed_status, for: 10s}")
    steps: list[Step] = []
    t = 0.0
    for i in range(30):  # flapping
        steps.append((t, _feed("stale" if i % 2 == 0 else "connected", t)))
        t += 2
    for _ in range(8):  # really stale
        steps.append((t, _feed("stale", t)))
        t += 2
    for i in range(30):  # flapping again
        steps.append((t, _feed("connected" if i % 2 == 0 else "stale", t)))
        t += 2
    for _ in range(10):  # really back
        steps.append((t, _feed("connected", t)))
        t += 2
    assert run(e, steps) == ["FIRING", "RESOLVED"]


def test_no_data_with_stray_events_after_an_outage() -> None:
    """`resolve_for: 60s`: after an outage, single stray events separated by more than the
    timeout do not resolve (and re-fire) the alert; steady data does, once."""
    e = engine("{id: nd, type: no_data, symbols: [A-USDT], timeout: 30s, resolve_for: 60s}")
    steps: list[Step] = []
    t = 0.0
    for _ in range(20):  # steady data with jitter
        steps.append((t, price("A-USDT", "1", t)))
        t += 1.5
    for _ in range(60):  # outage: only the clock moves
        steps.append((t, None))
        t += 1
    for _ in range(4):  # stray events, 35 s apart
        steps.append((t, price("A-USDT", "1", t)))
        for _ in range(35):
            t += 1
            steps.append((t, None))
    for _ in range(80):  # steady again
        steps.append((t, price("A-USDT", "1", t)))
        t += 1
    assert run(e, steps) == ["FIRING", "RESOLVED"]


def _health(status: str, t: float) -> ServiceHealthEvent:
    return ServiceHealthEvent(
        event_id=deterministic_id("h", status, t),
        event_time=at(t),
        received_at=at(t),
        source="ingest-ws",
        service="ingest-ws",
        instance="i1",
        status=status,  # type: ignore[arg-type]
    )


def test_service_health_flapping_faster_than_for() -> None:
    e = engine("{id: sh, type: service_health, for: 10s}")
    statuses = ["degraded", "ready"] * 15 + ["degraded"] * 10 + ["ready", "degraded"] * 15
    statuses += ["ready"] * 10
    steps = [(i * 2.0, _health(s, i * 2.0)) for i, s in enumerate(statuses)]
    assert run(e, steps) == ["FIRING", "RESOLVED"]


def test_error_rate_hovering_at_the_threshold() -> None:
    """More than 10 errors in 60 s fires; the count wobbling between 10 and 11 (crossing the
    threshold dozens of times) keeps it firing; it resolves at 8 or fewer, once."""
    e = engine("{id: er, type: error_rate, sources: [coingecko], window: 60s, threshold: 10}")
    rng = random.Random(6)
    errors: list[float] = []
    t = 0.0
    while t < 300:  # about 11 errors per minute, irregularly
        t += rng.uniform(5.0, 6.4)
        errors.append(t)
    steps: list[Step] = []
    for second in range(400):  # a clock tick every second, the errors in between
        while errors and errors[0] <= second:
            at_ = errors.pop(0)
            steps.append(
                (
                    at_,
                    FeedStatusEvent(
                        event_id=deterministic_id("fs", at_),
                        event_time=at(at_),
                        received_at=at(at_),
                        source="coingecko",
                        status="rate_limited",
                    ),
                )
            )
        steps.append((float(second), None))
    assert run(e, steps) == ["FIRING", "RESOLVED"]
