"""Each rule type as a pure function of events and time (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from coinstream.alerts.engine import Engine, Transition
from coinstream.alerts.evaluators import fear_greed_band
from coinstream.alerts.rules import parse_rules
from coinstream.schemas import (
    FeedStatusEvent,
    SentimentEvent,
    ServiceHealthEvent,
    deterministic_id,
)

from .alerts_helpers import T0, at, price


def engine(rule_yaml: str) -> Engine:
    text = (
        "default_receivers: [s]\n"
        "receivers: {s: {type: slack_webhook, url_env: ALERTS_X}}\n"
        "rules:\n  - " + rule_yaml.strip().replace("\n", "\n    ") + "\n"
    )
    return Engine(parse_rules(text))


def statuses(transitions: list[Transition]) -> list[str]:
    return [t.status for t in transitions]


def feed(status: str, t: float, source: str = "binance", symbol: str | None = "BTC-USDT"):
    return FeedStatusEvent(
        event_id=deterministic_id("fs", source, symbol, status, t),
        event_time=at(t),
        received_at=at(t),
        source=source,
        status=status,  # type: ignore[arg-type]
        symbol=symbol,
    )


def sentiment(value: int, t: float, classification: str | None = None) -> SentimentEvent:
    return SentimentEvent(
        event_id=deterministic_id("fg", value, t),
        event_time=at(t),
        received_at=at(t),
        source="feargreed",
        subject="market",
        metric="fear_greed",
        value=Decimal(value),
        classification=classification,
    )


def health(status: str, t: float, service: str = "ingest-ws", counters=None) -> ServiceHealthEvent:
    return ServiceHealthEvent(
        event_id=deterministic_id("h", service, status, t),
        event_time=at(t),
        received_at=at(t),
        source=service,
        service=service,
        instance="i1",
        status=status,  # type: ignore[arg-type]
        counters=counters or {},
    )


# ----------------------------------------------------------------------- price threshold
def test_threshold_fires_once_and_rearms_only_after_moving_back_by_the_amount() -> None:
    """Hysteresis: 67000 -> 69000 fires; dips to 67900 do not re-arm; 67700 resolves."""
    e = engine(
        "{id: btc, type: price_threshold, symbols: [BTC-USDT], direction: above,"
        " threshold: 68000, rearm_amount: 250}"
    )
    assert statuses(e.process(price("BTC-USDT", 67000, 0), T0)) == []
    assert statuses(e.process(price("BTC-USDT", 69000, 1), T0 + 1)) == ["firing"]
    assert statuses(e.process(price("BTC-USDT", 67900, 2), T0 + 2)) == []
    assert statuses(e.process(price("BTC-USDT", 68100, 3), T0 + 3)) == []
    assert statuses(e.process(price("BTC-USDT", 67700, 4), T0 + 4)) == ["resolved"]
    assert statuses(e.process(price("BTC-USDT", 68001, 5), T0 + 5)) == ["firing"]


def test_threshold_below_with_percent_rearm_and_patterns() -> None:
    """A pattern rule tracks each symbol separately; rearm_percent of 1% above 100 is 101."""
    e = engine(
        "{id: dip, type: price_threshold, symbols: ['*-USDT'], direction: below,"
        " threshold: 100, rearm_percent: 1}"
    )
    out = e.process(price("SOL-USDT", 99, 0), T0)
    assert statuses(out) == ["firing"] and out[0].alert.labels["symbol"] == "SOL-USDT"
    assert e.process(price("SOL-USD", 50, 0), T0) == []  # not matched
    assert statuses(e.process(price("ETH-USDT", 98, 1), T0 + 1)) == ["firing"]
    assert statuses(e.process(price("SOL-USDT", 100.5, 2), T0 + 2)) == []
    assert statuses(e.process(price("SOL-USDT", 101, 3), T0 + 3)) == ["resolved"]


def test_threshold_ignores_an_older_event_arriving_late() -> None:
    e = engine("{id: x, type: price_threshold, direction: above, threshold: 10}")
    assert statuses(e.process(price("A-USDT", 11, 5), T0)) == ["firing"]
    assert e.process(price("A-USDT", 1, 4), T0) == []  # late and older: ignored
    assert [a.status for a in e.alerts.values()] == ["firing"]


def test_for_duration_keeps_an_alert_pending_until_it_held() -> None:
    """`for: 10s`: pending at once, firing on the tick 10 s later; clearing earlier resolves
    the pending alert without firing."""
    e = engine("{id: x, type: price_threshold, direction: above, threshold: 10, for: 10s}")
    assert statuses(e.process(price("A-USDT", 11, 0), T0)) == ["pending"]
    assert e.tick(T0 + 9.9) == []
    assert statuses(e.tick(T0 + 10)) == ["firing"]
    e2 = engine("{id: x, type: price_threshold, direction: above, threshold: 10, for: 10s}")
    e2.process(price("A-USDT", 11, 0), T0)
    out = e2.process(price("A-USDT", 9, 5), T0 + 5)
    assert statuses(out) == ["resolved"] and not out[0].notify
    assert e2.tick(T0 + 20) == []


def test_cooldown_holds_a_new_firing_back_until_it_expires() -> None:
    e = engine("{id: x, type: price_threshold, direction: above, threshold: 10, cooldown: 60s}")
    assert statuses(e.process(price("A-USDT", 11, 0), T0)) == ["firing"]
    assert statuses(e.process(price("A-USDT", 9, 1), T0 + 1)) == ["resolved"]
    assert statuses(e.process(price("A-USDT", 12, 2), T0 + 2)) == ["pending"]
    assert e.tick(T0 + 59) == []
    assert statuses(e.tick(T0 + 60)) == ["firing"]


def test_send_resolved_false_resolves_without_notifying() -> None:
    e = engine(
        "{id: x, type: price_threshold, direction: above, threshold: 10, send_resolved: false}"
    )
    e.process(price("A-USDT", 11, 0), T0)
    out = e.process(price("A-USDT", 9, 1), T0 + 1)
    assert statuses(out) == ["resolved"] and out[0].notify is False


# ------------------------------------------------------------------------ percent change
def test_percent_change_over_a_sliding_event_time_window() -> None:
    """5% up within 60 s fires; the same rise spread over more than 60 s does not."""
    e = engine("{id: pc, type: percent_change, window: 60s, percent: 5, direction: up}")
    assert e.process(price("A-USDT", 100, 0), T0) == []
    assert e.process(price("A-USDT", 103, 30), T0) == []
    assert statuses(e.process(price("A-USDT", 105.5, 59), T0)) == ["firing"]
    slow = engine("{id: pc, type: percent_change, window: 60s, percent: 5, direction: up}")
    slow.process(price("A-USDT", 100, 0), T0)
    slow.process(price("A-USDT", 103, 50), T0)
    assert slow.process(price("A-USDT", 105.5, 120), T0) == []


def test_percent_change_counts_out_of_order_events_in_their_own_time() -> None:
    """A late low inside the window counts; a late event older than the window is ignored."""
    e = engine("{id: pc, type: percent_change, window: 60s, percent: 5, direction: up}")
    e.process(price("A-USDT", 104, 100), T0)
    e.process(price("A-USDT", 104, 110), T0)
    out = e.process(price("A-USDT", 98, 20), T0)  # older than 110-60: ignored
    assert out == []
    out = e.process(price("A-USDT", 99, 70), T0)  # late but inside the window: 99 -> 104
    assert statuses(out) == ["firing"]
    assert out[0].alert.value is not None and Decimal(out[0].alert.value) > 5


def test_percent_change_down_and_either_and_resolve_when_window_slides() -> None:
    e = engine("{id: pc, type: percent_change, window: 60s, percent: 5, direction: either}")
    e.process(price("A-USDT", 100, 0), T0)
    out = e.process(price("A-USDT", 94, 10), T0)
    assert statuses(out) == ["firing"] and Decimal(out[0].alert.value or 0) < 0
    assert statuses(e.process(price("A-USDT", 94, 100), T0)) == ["resolved"]
    up_only = engine("{id: pc, type: percent_change, window: 60s, percent: 5, direction: up}")
    up_only.process(price("A-USDT", 100, 0), T0)
    assert up_only.process(price("A-USDT", 94, 10), T0) == []


# --------------------------------------------------------------------------------- spike
def test_volume_spike_against_trailing_baseline() -> None:
    e = engine(
        "{id: vs, type: spike, metric: volume, window: 10s, baseline: 100s, factor: 3,"
        " min_samples: 20}"
    )
    out = []
    for i in range(110):
        out += e.process(price("A-USDT", 100, i, size="1"), T0)
    assert out == []  # steady volume: 10 per window in both
    for k in range(5):
        out += e.process(price("A-USDT", 100, 110 + k * 0.1, size="10"), T0)
    assert "firing" in statuses(out)


def test_volatility_spike_against_trailing_baseline() -> None:
    e = engine("{id: vol, type: spike, metric: volatility, window: 10s, baseline: 100s, factor: 4}")
    out = []
    for i in range(110):
        out += e.process(price("A-USDT", 100 + (i % 2) * 0.01, i), T0)
    assert out == []
    for i in range(110, 121):
        out += e.process(price("A-USDT", 100 + (i % 2) * 3, i), T0)
    assert "firing" in statuses(out)


# -------------------------------------------------------------------------------- spread
def test_cross_venue_spread_above_percent_with_fresh_prices_only() -> None:
    e = engine("{id: sp, type: spread, symbols: [BTC-USDT], percent: 1, max_age: 5s}")
    assert e.process(price("BTC-USDT", 100, 0, source="binance"), T0) == []
    out = e.process(price("BTC-USDT", 101.5, 1, source="kraken"), T0)
    assert statuses(out) == ["firing"] and "kraken" in out[0].alert.summary
    assert statuses(e.process(price("BTC-USDT", 101, 2, source="binance"), T0)) == ["resolved"]
    # a stale venue does not count
    e2 = engine("{id: sp, type: spread, symbols: [BTC-USDT], percent: 1, max_age: 5s}")
    e2.process(price("BTC-USDT", 100, 0, source="binance"), T0)
    assert e2.process(price("BTC-USDT", 110, 30, source="kraken"), T0) == []


# ----------------------------------------------------------------------------- sentiment
def test_fear_greed_band_change_fires_then_resolves_on_next_unchanged_report() -> None:
    e = engine("{id: fg, type: sentiment, mode: band_change}")
    assert e.process(sentiment(40, 0), T0) == []
    out = e.process(sentiment(20, 60), T0 + 60)
    assert statuses(out) == ["firing"]
    assert "Fear to Extreme Fear" in out[0].alert.summary
    assert statuses(e.process(sentiment(22, 120), T0 + 120)) == ["resolved"]
    assert (
        fear_greed_band(Decimal(50)) == "Neutral"
        and fear_greed_band(Decimal(80)) == "Extreme Greed"
    )


def test_sentiment_change_by_points_since_the_last_alert() -> None:
    e = engine("{id: fg, type: sentiment, mode: change, points: 10}")
    e.process(sentiment(50, 0), T0)
    assert e.process(sentiment(56, 1), T0) == []
    assert statuses(e.process(sentiment(61, 2), T0)) == ["firing"]
    assert statuses(e.process(sentiment(65, 3), T0)) == ["resolved"]  # 4 points since 61
    assert e.process(sentiment(10, 1), T0) == []  # older report ignored


# -------------------------------------------------------------------------- data quality
def test_stale_feed_and_gap_fire_and_clear_on_resumed() -> None:
    e = engine("{id: fs, type: feed_status, sources: [binance]}")
    out = e.process(feed("stale", 0), T0)
    assert statuses(out) == ["firing"] and out[0].alert.subject == "binance:BTC-USDT"
    assert e.process(feed("rate_limited", 1), T0) == []  # not a status this rule watches
    assert statuses(e.process(feed("resumed", 2), T0)) == ["resolved"]
    assert e.process(feed("stale", 3, source="kraken"), T0) == []


def test_gap_resolves_by_itself_after_resolve_after() -> None:
    e = engine("{id: fs, type: feed_status, statuses: [gap], resolve_after: 60s}")
    assert statuses(e.process(feed("gap", 0), T0)) == ["firing"]
    assert e.tick(T0 + 59) == []
    assert statuses(e.tick(T0 + 60)) == ["resolved"]


def test_no_data_for_an_expected_symbol() -> None:
    """Named symbols are expected from the start; silence longer than timeout fires."""
    e = engine("{id: nd, type: no_data, symbols: [BTC-USDT], timeout: 30s}")
    assert e.tick(T0) == []
    assert e.tick(T0 + 30) == []
    assert statuses(e.tick(T0 + 31)) == ["firing"]
    assert statuses(e.process(price("BTC-USDT", 1, 31), T0 + 32)) == ["resolved"]


# ------------------------------------------------------------------------- system health
def test_service_degraded_fires_and_ready_resolves() -> None:
    e = engine("{id: sh, type: service_health, services: ['ingest-*']}")
    assert e.process(health("ready", 0), T0) == []
    assert statuses(e.process(health("degraded", 1), T0)) == ["firing"]
    assert statuses(e.process(health("ready", 2), T0)) == ["resolved"]
    assert e.process(health("unready", 3, service="alerts"), T0) == []


def test_error_rate_over_a_window_from_feed_status_and_counters() -> None:
    e = engine(
        "{id: er, type: error_rate, sources: [coingecko], window: 60s, threshold: 3,"
        " counters: ['errors_*']}"
    )
    out = []
    for i in range(3):
        out += e.process(feed("rate_limited", i, source="coingecko", symbol=None), T0 + i)
    assert "firing" not in statuses(out)
    out = e.process(feed("source_error", 4, source="coingecko", symbol=None), T0 + 4)
    assert statuses(out) == ["firing"]
    assert statuses(e.tick(T0 + 70)) == ["resolved"]  # the window slid past them
    c = engine(
        "{id: er, type: error_rate, sources: [coingecko], window: 60s, threshold: 3,"
        " counters: ['errors_*']}"
    )
    c.process(health("ready", 0, service="coingecko", counters={"errors_429": 10}), T0)
    out = c.process(health("ready", 10, service="coingecko", counters={"errors_429": 15}), T0 + 10)
    assert statuses(out) == ["firing"]


# ---------------------------------------------------------------------------- persistence
def test_engine_state_survives_dump_and_load() -> None:
    """A restored engine neither re-fires a firing alert nor forgets a window."""
    rule = (
        "{id: btc, type: price_threshold, symbols: [BTC-USDT], direction: above,"
        " threshold: 68000, rearm_amount: 250}"
    )
    e = engine(rule)
    e.process(price("BTC-USDT", 69000, 0), T0)
    restored = engine(rule)
    assert restored.load(e.dump(), T0 + 1) == []
    assert restored.process(price("BTC-USDT", 69500, 1), T0 + 1) == []
    assert statuses(restored.process(price("BTC-USDT", 67000, 2), T0 + 2)) == ["resolved"]


def test_reload_keeps_unchanged_rules_and_resolves_changed_ones() -> None:
    e = engine("{id: a, type: price_threshold, direction: above, threshold: 10}")
    e.process(price("A-USDT", 11, 0), T0)
    same = engine("{id: a, type: price_threshold, direction: above, threshold: 10}").rules
    assert e.set_rules(same, T0 + 1) == []
    changed = engine("{id: a, type: price_threshold, direction: above, threshold: 20}").rules
    out = e.set_rules(changed, T0 + 2)
    assert statuses(out) == ["resolved"]
    assert datetime.fromtimestamp(T0, UTC) == at(0)


def test_a_rule_that_fails_on_an_event_does_not_stop_the_others() -> None:
    """An evaluator error is reported per event (for the dead-letter topic) while every other
    rule still evaluates it."""
    import pytest

    from coinstream.alerts.errors import EvaluationError

    text = (
        "default_receivers: [s]\n"
        "receivers: {s: {type: slack_webhook, url_env: ALERTS_X}}\n"
        "rules:\n"
        "  - {id: broken, type: percent_change, window: 60s, percent: 5}\n"
        "  - {id: high, type: price_threshold, symbols: [A-USDT], direction: above, threshold: 100}\n"
    )
    e = Engine(parse_rules(text))

    def explode(*_: object) -> list[object]:
        raise ArithmeticError("overflow in a window sum")

    e.evaluators["broken"].on_price = explode  # type: ignore[method-assign]
    with pytest.raises(EvaluationError) as caught:
        e.process(price("A-USDT", 150, 0), T0)
    assert "rule broken: ArithmeticError: overflow in a window sum" in str(caught.value)
    assert statuses(caught.value.transitions) == ["firing"]  # the threshold rule still fired


def test_alert_values_the_contract_cannot_carry_are_left_out_not_raised() -> None:
    """A percent change of 1e150 (absurd but in-contract prices) still yields an AlertEvent."""
    from coinstream.alerts.service import alert_event

    e = engine("{id: pc, type: percent_change, window: 60s, percent: 5, direction: up}")
    e.process(price("A-USDT", "0.0000000000000000000000000000000000000000000001", 0), T0)
    [t] = e.process(price("A-USDT", "1" + "0" * 70, 10), T0)
    event = alert_event(t.alert, t.status, t.at)
    assert event.status == "firing" and event.value is None
    assert event.threshold == Decimal(5)


def test_a_rule_changed_while_stopped_resolves_its_alerts_with_a_notice() -> None:
    """Restoring a snapshot whose rule changed: the alert resolves and says why."""
    e = engine("{id: a, type: price_threshold, direction: above, threshold: 10}")
    e.process(price("A-USDT", 11, 0), T0)
    changed = engine("{id: a, type: price_threshold, direction: above, threshold: 20}")
    out = changed.load(e.dump(), T0 + 5)
    assert statuses(out) == ["resolved"] and out[0].notify
    assert "rule a changed or removed while stopped" in out[0].alert.summary
    assert changed.alerts == {}
    unchanged = engine("{id: a, type: price_threshold, direction: above, threshold: 10}")
    assert unchanged.load(e.dump(), T0 + 5) == [] and len(unchanged.alerts) == 1


def test_fear_greed_state_is_kept_per_source() -> None:
    """CMC's and alternative.me's indices are separate series: one source's report is never
    compared with (or dropped for being older than) the other's."""
    e = engine("{id: fg, type: sentiment, mode: band_change}")

    def fg(value: int, t: float, source: str) -> SentimentEvent:
        return SentimentEvent(
            event_id=deterministic_id("fg", source, value, t),
            event_time=at(t),
            received_at=at(t),
            source=source,
            subject="market",
            metric="fear_greed",
            value=Decimal(value),
        )

    assert e.process(fg(40, 100, "coinmarketcap"), T0) == []
    assert e.process(fg(60, 50, "feargreed"), T0) == []  # older than CMC's, but its own first
    out = e.process(fg(20, 160, "feargreed"), T0 + 1)
    assert statuses(out) == ["firing"] and out[0].alert.labels["source"] == "feargreed"
    assert e.process(fg(41, 150, "coinmarketcap"), T0 + 2) == []  # CMC: still Fear
    only_cmc = engine("{id: fg, type: sentiment, mode: band_change, sources: [coinmarketcap]}")
    only_cmc.process(fg(60, 0, "feargreed"), T0)
    assert only_cmc.process(fg(20, 10, "feargreed"), T0) == []


def test_resolve_for_keeps_an_alert_firing_through_short_clears() -> None:
    """`resolve_for: 10s`: the condition must stay clear 10 s; coming back earlier keeps the
    alert firing without any transition."""
    e = engine(
        "{id: x, type: price_threshold, direction: above, threshold: 10, rearm_amount: 0,"
        " resolve_for: 10s}"
    )
    assert statuses(e.process(price("A-USDT", 11, 0), T0)) == ["firing"]
    assert e.process(price("A-USDT", 9, 1), T0 + 1) == []
    assert e.tick(T0 + 5) == []
    assert e.process(price("A-USDT", 12, 6), T0 + 6) == []  # back: still the same firing alert
    assert e.tick(T0 + 20) == []
    assert e.process(price("A-USDT", 9, 21), T0 + 21) == []
    out = e.tick(T0 + 31)
    assert statuses(out) == ["resolved"] and out[0].notify


def test_the_rule_index_picks_the_same_rules_as_matching_every_rule() -> None:
    """Exact symbols, globs, asset codes and source filters: the indexed engine evaluates
    exactly the rules whose selectors match."""
    from coinstream.alerts.index import PriceIndex

    rules = parse_rules(
        "default_receivers: [s]\n"
        "receivers: {s: {type: slack_webhook, url_env: ALERTS_X}}\n"
        "rules:\n"
        "  - {id: a, type: no_data, timeout: 5s, symbols: [BTC-USDT]}\n"
        "  - {id: b, type: no_data, timeout: 5s, symbols: ['*-USDT', ETH-BTC]}\n"
        "  - {id: c, type: no_data, timeout: 5s, assets: [ETH, 'SO?']}\n"
        "  - {id: d, type: no_data, timeout: 5s, sources: [kraken], symbols: ['BTC-*']}\n"
        "  - {id: e, type: no_data, timeout: 5s, symbols: ['[AB]*-USD']}\n"
    ).active_rules
    index = PriceIndex(list(rules))
    for symbol in ["BTC-USDT", "ETH-BTC", "ETH-USDT", "SOL-USD", "BTC-EUR", "ADA-USD", "X-Y"]:
        base = symbol.split("-")[0]
        for source in ["binance", "kraken"]:
            expected = [i for i, r in enumerate(rules) if r.matches(symbol, base, source)]  # type: ignore[union-attr]
            assert index.rules_for(symbol, base, source) == expected, (symbol, source)
