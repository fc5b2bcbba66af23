"""The rule engine (pure): events and time in, alert state transitions out.

For every alert instance (rule + labels, named by its fingerprint) the engine keeps a small
state machine, in the manner of Prometheus alerting rules::

    inactive --condition--> pending --held `for` and out of cooldown--> firing
    pending --condition cleared--> inactive (resolved quietly: nobody was told)
    firing --condition cleared and stayed clear `resolve_for`--> resolved
    firing --condition back within `resolve_for`--> firing (nothing happens)

The conditions come from the evaluators, with their own hysteresis (clear bands), so a value
hovering near a threshold makes at most one firing and one resolved per real crossing.
``on_price``/``process`` and ``tick`` return transitions; the caller publishes them, groups
them into notifications and persists ``dump()``. No I/O, no clock: ``now`` is passed in.

One engine holds the state of one partition of one topic (``kinds`` says which rule types
read it); ``owns`` tells whether a symbol's events arrive on that partition.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

from coinstream.alerts.errors import EvaluationError
from coinstream.alerts.evaluators import PRICE_TYPES, Evaluator, Observation, evaluator_for
from coinstream.alerts.index import PriceIndex
from coinstream.alerts.rules import AnyRule, RulesFile
from coinstream.alerts.ticks import Tick, tick_from_event
from coinstream.schemas import (
    Event,
    FeedStatusEvent,
    PriceEvent,
    SentimentEvent,
    ServiceHealthEvent,
    deterministic_id,
)

Status = Literal["pending", "firing", "resolved"]
Kind = Literal["price", "sentiment", "feed"]
ALL_KINDS: frozenset[str] = frozenset({"price", "sentiment", "feed"})
_TYPES: dict[str, frozenset[str]] = {
    "price": PRICE_TYPES,
    "sentiment": frozenset({"sentiment"}),
    "feed": frozenset({"feed_status", "service_health", "error_rate"}),
}
_FAILURES = (ArithmeticError, ValueError, TypeError, KeyError)


def fingerprint(rule_id: str, key: tuple[tuple[str, str], ...]) -> str:
    """Stable id of an alert instance: the same rule and labels, the same fingerprint."""
    return deterministic_id("alert", rule_id, *(f"{k}={v}" for k, v in sorted(key)))[:23]


@dataclass
class Alert:
    """One alert instance as the engine tracks and reports it."""

    fingerprint: str
    rule_id: str
    rule_type: str
    severity: str
    subject: str
    summary: str
    labels: dict[str, str]
    receivers: list[str]
    status: Status = "pending"
    value: str | None = None
    threshold: str | None = None
    active_since: float = 0.0
    fired_at: float | None = None
    ends_at: float | None = None
    send_resolved: bool = True
    repeat_interval: float | None = None
    clear_since: float | None = None

    def dump(self) -> dict[str, Any]:
        data = dict(self.__dict__)  # asdict() deep-copies: 10x slower, and nothing nests deeper
        data["labels"] = dict(self.labels)
        data["receivers"] = list(self.receivers)
        return data

    @classmethod
    def load(cls, data: dict[str, Any]) -> Alert:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Transition:
    """A state change. ``notify`` is true for firing, and for resolved when it was firing
    and the rule sends resolved notices."""

    alert: Alert
    status: Status
    at: float
    notify: bool


@dataclass
class Engine:
    """Evaluates the rules of a ``RulesFile`` over canonical events."""

    rules: RulesFile
    kinds: frozenset[str] = ALL_KINDS
    owns: Callable[[str], bool] | None = None
    evaluators: dict[str, Evaluator] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)
    cooldown_until: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.evaluators = {r.id: evaluator_for(r) for r in self._watched(self.rules)}
        self._reindex()
        self._timed: set[str] = set()  # pending, or firing with the condition cleared

    def _watched(self, rules: RulesFile) -> list[AnyRule]:
        types = frozenset().union(*(_TYPES[k] for k in self.kinds))
        return [r for r in rules.active_rules if r.type in types]

    def _reindex(self) -> None:
        evs = list(self.evaluators.values())
        prices = [e for e in evs if e.rule.type in PRICE_TYPES]
        self._price_evaluators = prices
        self._index = PriceIndex([e.rule for e in prices])
        self._by_subject: dict[tuple[str, str], tuple[Evaluator, ...]] = {}
        self._sentiment = [e for e in evs if e.rule.type == "sentiment"]
        self._feed = [e for e in evs if e.rule.type in ("feed_status", "error_rate")]
        self._health = [e for e in evs if e.rule.type in ("service_health", "error_rate")]
        self._tickers = [e for e in evs if e.rule.type in ("no_data", "feed_status", "error_rate")]
        self._rules = {e.rule.id: e.rule for e in evs}

    # ----------------------------------------------------------------------------- inputs
    def on_price(self, tick: Tick, now: float) -> list[Transition]:
        """Evaluate one price against the rules that watch its symbol (the hot path).

        A rule whose evaluator fails does not stop the others: their transitions are
        returned inside the ``EvaluationError`` raised at the end."""
        subject = (tick.symbol, tick.source)  # the base is part of the symbol
        evaluators = self._by_subject.get(subject)
        if evaluators is None:
            if len(self._by_subject) > 100_000:
                self._by_subject.clear()
            positions = self._index.rules_for(tick.symbol, tick.base, tick.source)
            evaluators = tuple(self._price_evaluators[p] for p in positions)
            self._by_subject[subject] = evaluators
        out: list[Transition] = []
        failures: list[str] | None = None
        for ev in evaluators:
            try:
                obs = ev.on_price(tick, now)
                if obs is not None:
                    out.extend(self._apply(ev.rule, obs, now))
            except _FAILURES as exc:
                failures = failures or []
                failures.append(f"rule {ev.rule.id}: {type(exc).__name__}: {exc}"[:500])
        if failures:
            raise EvaluationError(failures, out)
        return out

    def process(self, event: Event, now: float) -> list[Transition]:
        """Evaluate any event (the models' path): prices, sentiment, feed status, health."""
        if isinstance(event, PriceEvent):
            return self.on_price(tick_from_event(event), now)
        if isinstance(event, SentimentEvent):
            return self._each(self._sentiment, lambda ev: ev.on_sentiment(event, now), now)
        if isinstance(event, FeedStatusEvent):
            return self._each(self._feed, lambda ev: ev.on_feed_status(event, now), now)
        if isinstance(event, ServiceHealthEvent):
            return self._each(self._health, lambda ev: ev.on_health(event, now), now)
        return []

    def _each(
        self,
        evaluators: list[Evaluator],
        call: Callable[[Evaluator], Observation | None],
        now: float,
    ) -> list[Transition]:
        out: list[Transition] = []
        failures: list[str] = []
        for ev in evaluators:
            try:
                obs = call(ev)
                if obs is not None:
                    out.extend(self._apply(ev.rule, obs, now))
            except _FAILURES as exc:
                failures.append(f"rule {ev.rule.id}: {type(exc).__name__}: {exc}"[:500])
        if failures:
            raise EvaluationError(failures, out)
        return out

    def tick(self, now: float) -> list[Transition]:
        """Time passes: time-based rules, ``for``/``resolve_for`` and cooldowns may complete."""
        out: list[Transition] = []
        for ev in self._tickers:
            for obs in ev.on_tick(now, self.owns):
                out.extend(self._apply(ev.rule, obs, now))
        for fp in list(self._timed):
            alert = self.alerts.get(fp)
            rule = self._rules.get(alert.rule_id) if alert is not None else None
            if alert is None or rule is None:
                self._timed.discard(fp)
            elif alert.status == "pending":
                if self._may_fire(rule, alert, now):
                    out.append(self._fire(rule, alert, now))
            elif alert.clear_since is not None and now - alert.clear_since >= rule.clear_for:
                out.append(self._resolve(alert, now))
        for fp, until in list(self.cooldown_until.items()):
            if until <= now and fp not in self.alerts:
                del self.cooldown_until[fp]
        return out

    def set_rules(self, rules: RulesFile, now: float) -> list[Transition]:
        """Swap in reloaded rules. Unchanged rules keep their state; alerts of removed or
        changed rules resolve, saying so."""
        old = self._rules
        new = {r.id: r for r in self._watched(rules)}
        keep = {i for i, r in new.items() if i in old and self.evaluators[i].digest == r.digest()}
        out = self._resolve_rules_not_in(keep, now, "changed or removed")
        self.evaluators = {
            i: (self.evaluators[i] if i in keep else evaluator_for(r)) for i, r in new.items()
        }
        self.rules = rules
        self._reindex()
        return out

    def _resolve_rules_not_in(self, keep: set[str], now: float, why: str) -> list[Transition]:
        out = []
        for alert in list(self.alerts.values()):
            if alert.rule_id not in keep:
                out.append(self._resolve(alert, now, f"rule {alert.rule_id} {why}"))
        return out

    # ------------------------------------------------------------------------ transitions
    def _may_fire(self, rule: AnyRule, alert: Alert, now: float) -> bool:
        held = now - alert.active_since >= rule.for_
        return held and now >= self.cooldown_until.get(alert.fingerprint, -math.inf)

    def _fire(self, rule: AnyRule, alert: Alert, now: float) -> Transition:
        alert.status = "firing"
        alert.fired_at = now
        self._timed.discard(alert.fingerprint)
        if rule.cooldown > 0:
            self.cooldown_until[alert.fingerprint] = now + rule.cooldown
        return Transition(replace(alert), "firing", now, notify=True)

    def _resolve(self, alert: Alert, now: float, summary: str | None = None) -> Transition:
        del self.alerts[alert.fingerprint]
        self._timed.discard(alert.fingerprint)
        was_firing = alert.status == "firing"
        alert.status = "resolved"
        alert.ends_at = now
        alert.clear_since = None
        if summary:
            alert.summary = summary
        return Transition(alert, "resolved", now, notify=was_firing and alert.send_resolved)

    def _apply(self, rule: AnyRule, obs: Observation, now: float) -> list[Transition]:
        fp = fingerprint(rule.id, obs.key)
        alert = self.alerts.get(fp)
        if alert is not None:
            alert.summary = obs.summary
            alert.value = _text(obs.value)
        if not obs.active:
            if alert is None:
                return []
            if alert.status == "pending" or rule.clear_for <= 0:
                return [self._resolve(alert, now)]
            if alert.clear_since is None:
                alert.clear_since = now
                self._timed.add(fp)
            return []
        if alert is not None:
            if alert.clear_since is not None:  # back before resolve_for passed: still firing
                alert.clear_since = None
                self._timed.discard(fp)
            return []
        labels = {
            "alertname": rule.id,
            "severity": rule.severity,
            **rule.labels,
            **{k: v for k, v in obs.key if v},
        }
        alert = Alert(
            fingerprint=fp,
            rule_id=rule.id,
            rule_type=rule.type,
            severity=rule.severity,
            subject=obs.subject,
            summary=obs.summary,
            labels=labels,
            receivers=self.rules.receivers_of(rule),
            value=_text(obs.value),
            threshold=_text(obs.threshold),
            active_since=now,
            send_resolved=rule.send_resolved,
            repeat_interval=rule.repeat_interval,
        )
        self.alerts[fp] = alert
        if self._may_fire(rule, alert, now):
            return [self._fire(rule, alert, now)]
        self._timed.add(fp)
        return [Transition(replace(alert), "pending", now, notify=False)]

    # ------------------------------------------------------------------------ persistence
    def dump(self) -> dict[str, Any]:
        """JSON-serialisable state: evaluator windows, alerts and cooldowns."""
        return {
            "evaluators": {
                i: {"digest": ev.digest, "state": ev.dump()} for i, ev in self.evaluators.items()
            },
            "alerts": [a.dump() for a in self.alerts.values()],
            "cooldown_until": self.cooldown_until,
        }

    def load(self, data: dict[str, Any], now: float) -> list[Transition]:
        """Restore ``dump()`` output. State of rules whose definition changed (or that were
        removed) while the service was stopped is dropped, and their alerts resolve with a
        notice: the returned transitions."""
        saved = data.get("evaluators", {})
        valid = {
            i for i, ev in self.evaluators.items() if saved.get(i, {}).get("digest") == ev.digest
        }
        for rule_id in valid:
            self.evaluators[rule_id].load(saved[rule_id]["state"])
        self.alerts = {a["fingerprint"]: Alert.load(a) for a in data.get("alerts", [])}
        self.cooldown_until = dict(data.get("cooldown_until", {}))
        self._timed = {
            fp
            for fp, a in self.alerts.items()
            if a.status == "pending" or a.clear_since is not None
        }
        return self._resolve_rules_not_in(valid, now, "changed or removed while stopped")


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")
