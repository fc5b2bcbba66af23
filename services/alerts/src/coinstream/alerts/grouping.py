"""Notification grouping (pure), with Alertmanager's semantics, per receiver.

Alerts for one receiver with the same ``group_by`` label values share a group (the receiver
may override the file's ``grouping``, like an Alertmanager route). For each group:

- the first message goes out ``group_wait`` after the group formed (collecting the rest of a
  market-wide move into one message);
- a later message goes out only when something changed for that receiver: an alert it has not
  been told is firing, or an alert it was told is firing has resolved; and never sooner than
  ``group_interval`` after the previous message to that group (also when the group emptied
  and formed again in between);
- while nothing changes, a group still firing is repeated every ``repeat_interval`` (the
  shortest ``repeat_interval`` of its rules, else the receiver's).

A receiver sees RESOLVED only for alerts it was told were FIRING (``Group.notified``): an alert
that fired and resolved before it was sent, or while silenced, is never announced at all.
Silenced alerts are left out of messages; when a silence ends (``reconsider``) a group whose
receiver has not heard of a firing alert, or of the end of one, is sent again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from coinstream.alerts.engine import Alert, Transition
from coinstream.alerts.rules import Grouping, RulesFile
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
    created_at: float
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    notified: list[str] = field(default_factory=list)  # told FIRING, not yet told RESOLVED
    next_flush: float | None = None
    last_sent: float | None = None
    seq: int = 0


Silenced = Callable[[dict[str, str]], bool]


class Grouper:
    """Collects transitions into groups; ``due(now)`` yields the messages to send.

    ``scope`` names the partition the groups belong to (it goes into notification ids)."""

    def __init__(self, rules: RulesFile, scope: str = "") -> None:
        self.rules = rules
        self.scope = scope
        self.groups: dict[str, Group] = {}

    def grouping(self, receiver: str) -> Grouping:
        return self.rules.grouping_for(receiver)

    def add(self, transition: Transition, now: float) -> None:
        """Take a transition: firing joins its groups; resolved is kept for the receivers that
        were told it was firing and forgotten by the others; pending is ignored."""
        if transition.status == "pending":
            return
        alert = transition.alert
        fp = alert.fingerprint
        for receiver in alert.receivers:
            g = self.grouping(receiver)
            glabels = {k: alert.labels.get(k, "") for k in g.group_by}
            key = receiver + "|" + "|".join(f"{k}={v}" for k, v in sorted(glabels.items()))
            group = self.groups.get(key)
            if transition.status == "resolved":
                if group is None:
                    continue
                if fp not in group.notified:
                    group.alerts.pop(fp, None)  # never told: nothing to take back
                    continue
                group.alerts[fp] = _snapshot(alert, "resolved")
            else:
                if group is None:
                    group = self.groups[key] = Group(key, receiver, glabels, created_at=now)
                group.alerts[fp] = _snapshot(alert, "firing")
            self._schedule(group, g, now)

    def _schedule(self, group: Group, g: Grouping, now: float) -> None:
        if group.last_sent is None:
            at = group.created_at + g.group_wait
        else:
            at = group.last_sent + g.group_interval
        group.next_flush = min(group.next_flush or math.inf, max(at, now))

    def reconsider(self, now: float) -> None:
        """Silences ended: groups that have something to tell are scheduled again."""
        for group in self.groups.values():
            if group.alerts:
                self._schedule(group, self.grouping(group.receiver), now)

    def next_due(self) -> float | None:
        times = [g.next_flush for g in self.groups.values() if g.next_flush is not None]
        return min(times) if times else None

    def due(self, now: float, silenced: Silenced = lambda labels: False) -> list[Notification]:
        """Groups whose time has come, as notifications; updates the groups' schedule."""
        out: list[Notification] = []
        for key, group in list(self.groups.items()):
            if group.next_flush is None or group.next_flush > now:
                continue
            group.next_flush = None
            note = self._flush(group, now, silenced)
            if note is not None:
                out.append(note)
            g = self.grouping(group.receiver)
            if not group.alerts and not group.notified:
                # Keep an empty group until group_interval passed, so a new alert joining
                # soon still waits for it.
                if group.last_sent is None or now >= group.last_sent + g.group_interval:
                    del self.groups[key]
                else:
                    group.next_flush = group.last_sent + g.group_interval
                continue
            visible = [
                a
                for a in group.alerts.values()
                if a["status"] == "firing" and not silenced(a["labels"])
            ]
            if visible and group.last_sent is not None:
                repeats = [a["repeat_interval"] for a in visible if a["repeat_interval"]]
                repeat = min(repeats or [g.repeat_interval])
                group.next_flush = min(group.next_flush or math.inf, group.last_sent + repeat)
        return out

    def _flush(self, group: Group, now: float, silenced: Silenced) -> Notification | None:
        g = self.grouping(group.receiver)
        notified = set(group.notified)
        visible, to_resolve = [], []
        for fp, a in list(group.alerts.items()):
            if a["status"] == "firing":
                if not silenced(a["labels"]):
                    visible.append(a)
            elif fp not in notified:
                del group.alerts[fp]
            elif not a["send_resolved"]:
                del group.alerts[fp]
                notified.discard(fp)
            elif not silenced(a["labels"]):
                to_resolve.append(a)
            # resolved while silenced: told when the silence ends
        new = [a for a in visible if a["fingerprint"] not in notified]
        repeat_at = None
        if group.last_sent is not None:
            repeats = [a["repeat_interval"] for a in visible if a["repeat_interval"]]
            repeat_at = group.last_sent + min(repeats or [g.repeat_interval])
        reminder = bool(visible) and repeat_at is not None and now >= repeat_at
        group.notified = sorted(notified)
        if not (new or to_resolve or reminder):
            return None
        group.seq += 1
        for a in to_resolve:
            del group.alerts[a["fingerprint"]]
            notified.discard(a["fingerprint"])
        notified.update(a["fingerprint"] for a in visible)
        group.notified = sorted(notified)
        group.last_sent = now
        return Notification(
            id=deterministic_id("notification", self.scope, group.key, group.seq, now),
            receiver=group.receiver,
            group_key=group.key,
            group_labels=group.labels,
            firing=sorted(visible, key=_order),
            resolved=sorted(to_resolve, key=_order),
            created_at=now,
            repeat=not (new or to_resolve),
        )

    def dump(self) -> list[dict[str, Any]]:
        """The groups as JSON-ready data (sharing the alert dicts: encode it, don't keep it)."""
        return [dict(g.__dict__) for g in self.groups.values()]

    def load(self, data: list[dict[str, Any]]) -> None:
        known = Group.__dataclass_fields__
        self.groups = {
            g["key"]: Group(**{k: v for k, v in g.items() if k in known})
            for g in data
            if "created_at" in g
        }


def _snapshot(alert: Alert, status: str) -> dict[str, Any]:
    data = alert.dump()
    data["status"] = status
    return data


def _order(alert: dict[str, Any]) -> tuple[int, str]:
    rank = {"critical": 0, "warning": 1, "info": 2}.get(alert["severity"], 3)
    return rank, alert["subject"]
