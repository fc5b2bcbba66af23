"""Notification grouping (pure), modelled on Alertmanager's group wait/interval/repeat.

Alerts for one receiver with the same ``group_by`` label values share a group. A new group is
sent after ``group_wait`` (collecting the rest of a market-wide move into one message), later
changes at most every ``group_interval``, and a group still firing is repeated every
``repeat_interval``. Silenced alerts are left out at send time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from coinstream.alerts.engine import Alert, Transition
from coinstream.alerts.rules import Grouping
from coinstream.schemas import deterministic_id


@dataclass
class Notification:
    """One message for one receiver: the group's firing and newly resolved alerts."""

    id: str
    receiver: str
    group_key: str
    group_labels: dict[str, str]
    firing: list[dict[str, Any]]
    resolved: list[dict[str, Any]]
    created_at: float
    repeat: bool = False

    def dump(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, data: dict[str, Any]) -> Notification:
        return cls(**data)

    @property
    def fingerprints(self) -> list[str]:
        return [a["fingerprint"] for a in [*self.firing, *self.resolved]]


@dataclass
class Group:
    key: str
    receiver: str
    labels: dict[str, str]
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_flush: float | None = None
    last_flush: float | None = None
    dirty: bool = False
    seq: int = 0


Silenced = Callable[[dict[str, str]], bool]


class Grouper:
    """Collects notifiable transitions into groups; ``due(now)`` yields the messages to send."""

    def __init__(self, grouping: Grouping) -> None:
        self.grouping = grouping
        self.groups: dict[str, Group] = {}

    def group_labels(self, labels: dict[str, str]) -> dict[str, str]:
        return {k: labels.get(k, "") for k in self.grouping.group_by}

    def add(self, transition: Transition, now: float) -> None:
        """Take a transition: firing joins its groups; resolved is announced (``notify``) or
        quietly dropped; pending is ignored."""
        if transition.status == "pending":
            return
        alert = transition.alert
        for receiver in alert.receivers:
            glabels = self.group_labels(alert.labels)
            key = receiver + "|" + "|".join(f"{k}={v}" for k, v in sorted(glabels.items()))
            group = self.groups.get(key)
            if not transition.notify:
                if group is not None:
                    group.alerts.pop(alert.fingerprint, None)
                    if not group.alerts:
                        del self.groups[key]
                continue
            if group is None:
                group = self.groups[key] = Group(key, receiver, glabels)
            group.alerts[alert.fingerprint] = _snapshot(alert, transition.status)
            group.dirty = True
            if group.last_flush is None:
                if group.next_flush is None:
                    group.next_flush = now + self.grouping.group_wait
            else:
                soonest = max(now, group.last_flush + self.grouping.group_interval)
                group.next_flush = min(group.next_flush or math.inf, soonest)

    def next_due(self) -> float | None:
        times = [g.next_flush for g in self.groups.values() if g.next_flush is not None]
        return min(times) if times else None

    def due(self, now: float, silenced: Silenced = lambda labels: False) -> list[Notification]:
        """Groups whose time has come, as notifications; updates the groups' schedule."""
        out: list[Notification] = []
        for key, group in list(self.groups.items()):
            if group.next_flush is None or group.next_flush > now:
                continue
            firing = [a for a in group.alerts.values() if a["status"] == "firing"]
            resolved = [a for a in group.alerts.values() if a["status"] == "resolved"]
            send_firing = [a for a in firing if not silenced(a["labels"])]
            send_resolved = [a for a in resolved if not silenced(a["labels"])]
            if send_firing or (group.dirty and send_resolved):
                group.seq += 1
                out.append(
                    Notification(
                        id=deterministic_id("notification", key, group.seq, now),
                        receiver=group.receiver,
                        group_key=key,
                        group_labels=group.labels,
                        firing=sorted(send_firing, key=_order),
                        resolved=sorted(send_resolved, key=_order),
                        created_at=now,
                        repeat=not group.dirty,
                    )
                )
            for a in resolved:
                del group.alerts[a["fingerprint"]]
            group.last_flush = now
            group.dirty = False
            if group.alerts:
                repeats = [
                    a["repeat_interval"] for a in group.alerts.values() if a["repeat_interval"]
                ]
                group.next_flush = now + min(repeats or [self.grouping.repeat_interval])
            else:
                del self.groups[key]
        return out

    def forget(self, fingerprints: set[str]) -> None:
        """Drop alerts (e.g. of a removed receiver) from every group."""
        for group in self.groups.values():
            for fp in fingerprints & set(group.alerts):
                del group.alerts[fp]

    def dump(self) -> list[dict[str, Any]]:
        return [asdict(g) for g in self.groups.values()]

    def load(self, data: list[dict[str, Any]]) -> None:
        self.groups = {g["key"]: Group(**g) for g in data}


def _snapshot(alert: Alert, status: str) -> dict[str, Any]:
    data = alert.dump()
    data["status"] = status
    return data


def _order(alert: dict[str, Any]) -> tuple[int, str]:
    rank = {"critical": 0, "warning": 1, "info": 2}.get(alert["severity"], 3)
    return rank, alert["subject"]
