"""Grouping: a market-wide move is one message per receiver; wait, interval and repeat."""

from __future__ import annotations

from coinstream.alerts.engine import Engine
from coinstream.alerts.grouping import Grouper
from coinstream.alerts.rules import parse_rules

from .alerts_helpers import T0, price

RULES = """
grouping: {group_by: [alertname], group_wait: 2s, group_interval: 10s, repeat_interval: 60s}
receivers:
  slack: {type: slack_webhook, url_env: ALERTS_A}
  tg: {type: telegram, token_env: ALERTS_B, chat_id: 42}
rules:
  - {id: dip, type: price_threshold, symbols: ['*-USDT'], direction: below, threshold: 100,
     receivers: [slack, tg]}
  - {id: quiet, type: price_threshold, symbols: ['*-USDT'], direction: above, threshold: 1000,
     receivers: [slack], send_resolved: false}
"""

SYMBOLS = [f"C{i}-USDT" for i in range(50)]


def setup() -> tuple[Engine, Grouper]:
    rules = parse_rules(RULES)
    return Engine(rules), Grouper(rules.grouping)


def test_fifty_symbols_crossing_make_one_message_per_receiver() -> None:
    engine, grouper = setup()
    for i, s in enumerate(SYMBOLS):
        for t in engine.process(price(s, 90, i * 0.01), T0 + i * 0.01):
            grouper.add(t, T0 + i * 0.01)
    assert grouper.due(T0 + 1.9) == []  # group_wait not over
    notes = grouper.due(T0 + 2)
    assert sorted(n.receiver for n in notes) == ["slack", "tg"]
    assert all(len(n.firing) == 50 for n in notes)


def test_group_interval_batches_later_changes_and_repeat_interval_reminds() -> None:
    engine, grouper = setup()
    for t in engine.process(price("A-USDT", 90, 0), T0):
        grouper.add(t, T0)
    assert len(grouper.due(T0 + 2)) == 2
    for t in engine.process(price("B-USDT", 90, 3), T0 + 3):
        grouper.add(t, T0 + 3)
    assert grouper.due(T0 + 11) == []  # group_interval from the last flush at T0+2
    notes = grouper.due(T0 + 12)
    assert len(notes) == 2 and all(len(n.firing) == 2 and not n.repeat for n in notes)
    assert grouper.due(T0 + 71) == []
    reminders = grouper.due(T0 + 72)
    assert len(reminders) == 2 and all(n.repeat for n in reminders)


def test_resolved_alerts_are_sent_once_then_the_group_closes() -> None:
    engine, grouper = setup()
    for t in engine.process(price("A-USDT", 90, 0), T0):
        grouper.add(t, T0)
    grouper.due(T0 + 2)
    for t in engine.process(price("A-USDT", 110, 5), T0 + 5):
        grouper.add(t, T0 + 5)
    notes = grouper.due(T0 + 12)
    assert len(notes) == 2 and all(n.resolved and not n.firing for n in notes)
    assert grouper.groups == {}


def test_resolved_without_send_resolved_is_dropped_silently() -> None:
    engine, grouper = setup()
    for t in engine.process(price("A-USDT", 2000, 0), T0):
        grouper.add(t, T0)
    assert len(grouper.due(T0 + 2)) == 1
    for t in engine.process(price("A-USDT", 500, 1), T0 + 3):
        grouper.add(t, T0 + 3)
    assert grouper.due(T0 + 100) == []
    assert grouper.groups == {}


def test_silenced_alerts_are_left_out_of_messages() -> None:
    engine, grouper = setup()
    for s in ("A-USDT", "B-USDT"):
        for t in engine.process(price(s, 90, 0), T0):
            grouper.add(t, T0)
    notes = grouper.due(T0 + 2, silenced=lambda labels: labels.get("symbol") == "A-USDT")
    assert all([a["subject"] for a in n.firing] == ["B-USDT"] for n in notes)


def test_grouping_state_survives_dump_and_load() -> None:
    engine, grouper = setup()
    for t in engine.process(price("A-USDT", 90, 0), T0):
        grouper.add(t, T0)
    restored = Grouper(parse_rules(RULES).grouping)
    restored.load(grouper.dump())
    assert len(restored.due(T0 + 2)) == 2
