"""The rule engine (pure): events and time in, alert state transitions out.

For every alert instance (rule + labels, named by its fingerprint) the engine keeps a small
state machine::

    inactive --condition--> pending --held `for` and out of cooldown--> firing
    pending/firing --condition cleared--> resolved (inactive)

``process(event, now)`` and ``tick(now)`` return the transitions; the caller publishes them,
groups them into notifications and persists ``dump()``. No I/O, no clock: ``now`` is passed in.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

from coinstream.alerts.errors import EvaluationError
from coinstream.alerts.evaluators import Evaluator, Observation, evaluator_for
from coinstream.alerts.rules import AnyRule, RulesFile
from coinstream.schemas import (
    Event,
    FeedStatusEvent,
    PriceEvent,
    SentimentEvent,
    ServiceHealthEvent,
    deterministic_id,
)

Status = Literal["pending", "firing", "resolved"]


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

    def dump(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, data: dict[str, Any]) -> Alert:
        return cls(**data)


@dataclass(frozen=True)
class Transition:
    """A state change. ``notify`` says whether receivers should hear about it."""

    alert: Alert
    status: Status
    at: float
    notify: bool


@dataclass
class Engine:
    """Evaluates the rules of a ``RulesFile`` over canonical events."""

    rules: RulesFile
    evaluators: dict[str, Evaluator] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)
    cooldown_until: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.evaluators:
            self.evaluators = {r.id: evaluator_for(r) for r in self.rules.active_rules}

    # ----------------------------------------------------------------------------- inputs
    def process(self, event: Event, now: float) -> list[Transition]:
        """Evaluate one event against every rule that watches its kind.

        A rule whose evaluator fails on the event does not stop the others: their
        transitions are returned inside the ``EvaluationError`` raised at the end."""
        out: list[Transition] = []
        failures: list[str] = []
        for rule_id, ev in self.evaluators.items():
            try:
                if isinstance(event, PriceEvent):
                    observations = ev.on_price(event, now)
                elif isinstance(event, SentimentEvent):
                    observations = ev.on_sentiment(event, now)
                elif isinstance(event, FeedStatusEvent):
                    observations = ev.on_feed_status(event, now)
                elif isinstance(event, ServiceHealthEvent):
                    observations = ev.on_health(event, now)
                else:
                    continue
                for obs in observations:
                    out.extend(self._apply(ev.rule, obs, now))
            except (ArithmeticError, ValueError, TypeError, KeyError) as exc:
                failures.append(f"rule {rule_id}: {type(exc).__name__}: {exc}"[:500])
        if failures:
            raise EvaluationError(failures, out)
        return out

    def tick(self, now: float) -> list[Transition]:
        """Time passes: time-based rules, ``for`` durations and cooldowns may complete."""
        out: list[Transition] = []
        for ev in self.evaluators.values():
            for obs in ev.on_tick(now):
                out.extend(self._apply(ev.rule, obs, now))
        rules = {r.id: r for r in self.rules.active_rules}
        for alert in list(self.alerts.values()):
            rule = rules.get(alert.rule_id)
            if rule is not None and alert.status == "pending" and self._may_fire(rule, alert, now):
                out.append(self._fire(rule, alert, now))
        for fp, until in list(self.cooldown_until.items()):
            if until <= now and fp not in self.alerts:
                del self.cooldown_until[fp]
        return out

    def set_rules(self, rules: RulesFile, now: float) -> list[Transition]:
        """Swap in reloaded rules. Unchanged rules keep their state; alerts of removed or
        changed rules resolve."""
        old = {r.id: r for r in self.rules.active_rules}
        new = {r.id: r for r in rules.active_rules}
        keep = {i for i, r in new.items() if i in old and old[i].digest() == r.digest()}
        out: list[Transition] = []
        for alert in list(self.alerts.values()):
            if alert.rule_id not in keep:
                out.append(self._resolve(alert, now, f"rule {alert.rule_id} changed or removed"))
        self.evaluators = {
            i: (self.evaluators[i] if i in keep else evaluator_for(r)) for i, r in new.items()
        }
        self.rules = rules
        return out

    # ------------------------------------------------------------------------ transitions
    def _may_fire(self, rule: AnyRule, alert: Alert, now: float) -> bool:
        held = now - alert.active_since >= rule.for_
        return held and now >= self.cooldown_until.get(alert.fingerprint, -math.inf)

    def _fire(self, rule: AnyRule, alert: Alert, now: float) -> Transition:
        alert.status = "firing"
        alert.fired_at = now
        if rule.cooldown > 0:
            self.cooldown_until[alert.fingerprint] = now + rule.cooldown
        return Transition(replace(alert), "firing", now, notify=True)

    def _resolve(self, alert: Alert, now: float, summary: str | None = None) -> Transition:
        del self.alerts[alert.fingerprint]
        was_firing = alert.status == "firing"
        alert.status = "resolved"
        alert.ends_at = now
        if summary:
            alert.summary = summary
        return Transition(alert, "resolved", now, notify=was_firing and alert.send_resolved)

    def _apply(self, rule: AnyRule, obs: Observation, now: float) -> list[Transition]:
        fp = fingerprint(rule.id, obs.key)
        alert = self.alerts.get(fp)
        if not obs.active:
            if alert is None:
                return []
            alert.summary = obs.summary
            alert.value = _text(obs.value)
            return [self._resolve(alert, now)]
        out: list[Transition] = []
        if alert is None:
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
                active_since=now,
                send_resolved=rule.send_resolved,
                repeat_interval=rule.repeat_interval,
            )
            self.alerts[fp] = alert
            if not self._may_fire(rule, alert, now):
                out.append(Transition(replace(alert), "pending", now, notify=False))
        alert.summary = obs.summary
        alert.value = _text(obs.value)
        alert.threshold = _text(obs.threshold)
        if alert.status == "pending" and self._may_fire(rule, alert, now):
            out.append(self._fire(rule, alert, now))
        return out

    # ------------------------------------------------------------------------ persistence
    def dump(self) -> dict[str, Any]:
        """JSON-serialisable state: evaluator windows, alerts and cooldowns."""
        digests = {r.id: r.digest() for r in self.rules.active_rules}
        return {
            "evaluators": {
                i: {"digest": digests[i], "state": ev.dump()} for i, ev in self.evaluators.items()
            },
            "alerts": [a.dump() for a in self.alerts.values()],
            "cooldown_until": self.cooldown_until,
        }

    def load(self, data: dict[str, Any]) -> None:
        """Restore ``dump()`` output; state of rules whose definition changed is dropped."""
        digests = {r.id: r.digest() for r in self.rules.active_rules}
        for rule_id, saved in data.get("evaluators", {}).items():
            if digests.get(rule_id) == saved.get("digest") and rule_id in self.evaluators:
                self.evaluators[rule_id].load(saved["state"])
        valid = {
            i
            for i, d in digests.items()
            if data.get("evaluators", {}).get(i, {}).get("digest") == d
        }
        self.alerts = {
            a["fingerprint"]: Alert.load(a) for a in data.get("alerts", []) if a["rule_id"] in valid
        }
        self.cooldown_until = dict(data.get("cooldown_until", {}))


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")
