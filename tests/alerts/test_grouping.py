"""Grouping with Alertmanager's semantics, per receiver (pure): wait, interval, repeat, and a
receiver's view that matches what it was told."""

from __future__ import annotations

from coinstream.alerts.engine import Engine
from coinstream.alerts.grouping import Grouper, Notification
from coinstream.alerts.rules import parse_rules

from .alerts_helpers import T0, price

RULES = """
grouping: {group_by: [alertname], group_wait: 2s, group_interval: 10s, repeat_interval: 60s}
receivers:
  slack: {type: slack_webhook, url_env: ALERTS_A}
  tg: {type: telegram, token_env: ALERTS_B, chat_id: 42, group_wait: 0s, group_interval: 30s}
rules:
  - {id: dip, type: price_threshold, symbols: ['*-USDT'], direction: below, threshold: 100,
     receivers: [slack, tg]}
  - {id: quiet, type: price_threshold, symbols: ['*-USDT'], direction: above, threshold: 1000,
     receivers: [slack], send_resolved: false}
"""

SYMBOLS = [f"C{i}-USDT" for i in range(50)]


def setup(text: str = RULES) -> tuple[Engine, Grouper]:
    rules = parse_rules(text)
    return Engine(rules), Grouper(rules)


def feed(engine: Engine, grouper: Grouper, symbol: str, value: float, t: float) -> None:
    for tr in engine.process(price(symbol, value, t), T0 + t):
        grouper.add(tr, T0 + t)


def by_receiver(notes: list[Notification]) -> dict[str, Notification]:
    return {n.receiver: n for n in notes}


def test_fifty_symbols_crossing_make_one_message_per_receiver() -> None:
    engine, grouper = setup()
    for i, s in enumerate(SYMBOLS):
        feed(engine, grouper, s, 90, i * 0.01)
    first = by_receiver(grouper.due(T0 + 1.9))
    assert list(first) == ["tg"]  # the receiver's own group_wait: 0s
    notes = by_receiver(grouper.due(T0 + 2))
    assert list(notes) == ["slack"] and len(notes["slack"].firing) == 50


def test_group_interval_batches_later_changes_and_repeat_interval_reminds() -> None:
    engine, grouper = setup()
    feed(engine, grouper, "A-USDT", 90, 0)
    assert len(grouper.due(T0 + 2)) == 2
    feed(engine, grouper, "B-USDT", 90, 3)
    assert grouper.due(T0 + 11) == []  # group_interval from the last message at T0+2
    notes = by_receiver(grouper.due(T0 + 12))
    assert list(notes) == ["slack"] and len(notes["slack"].firing) == 2
    assert not notes["slack"].repeat
    assert [n.receiver for n in grouper.due(T0 + 32)] == ["tg"]  # tg's own interval: 30 s
    assert grouper.due(T0 + 71) == []
    reminders = grouper.due(T0 + 72)
    assert [n.receiver for n in reminders] == ["slack"] and reminders[0].repeat


def test_group_interval_holds_even_when_the_group_emptied_in_between() -> None:
    """Fire, resolve, fire again within seconds: messages stay group_interval apart."""
    engine, grouper = setup()
    feed(engine, grouper, "A-USDT", 90, 0)
    sent = [n for n in grouper.due(T0 + 2) if n.receiver == "slack"]
    feed(engine, grouper, "A-USDT", 110, 3)
    feed(engine, grouper, "A-USDT", 90, 4)  # firing again: the receiver never lost it
    feed(engine, grouper, "A-USDT", 110, 5)
    for t in range(6, 30):
        sent += [n for n in grouper.due(T0 + t) if n.receiver == "slack"]
    times = [n.created_at - T0 for n in sent]
    assert times == [2, 12] and sent[1].resolved and not sent[1].firing


def test_resolved_is_sent_only_to_receivers_told_it_was_firing() -> None:
    """A dip that fires and resolves within group_wait is never announced to slack; tg, told
    at once (group_wait 0), hears both."""
    engine, grouper = setup()
    feed(engine, grouper, "A-USDT", 90, 0)
    told = grouper.due(T0)
    assert [n.receiver for n in told] == ["tg"]
    feed(engine, grouper, "A-USDT", 110, 1)
    notes = grouper.due(T0 + 40)
    assert [n.receiver for n in notes] == ["tg"]
    assert [a["subject"] for a in notes[0].resolved] == ["A-USDT"] and not notes[0].firing
    assert grouper.due(T0 + 100) == []


def test_a_fresh_grouper_replaying_history_sends_no_resolved_it_never_announced() -> None:
    """A new instance (no state) sees a firing and a resolved from history: nothing to tell."""
    engine, grouper = setup()
    feed(engine, grouper, "A-USDT", 90, 0)
    feed(engine, grouper, "A-USDT", 110, 0.001)
    assert grouper.due(T0 + 100) == []


def test_resolved_without_send_resolved_is_dropped_silently() -> None:
    engine, grouper = setup()
    feed(engine, grouper, "A-USDT", 2000, 0)
    assert len(grouper.due(T0 + 2)) == 1
    feed(engine, grouper, "A-USDT", 500, 3)
    assert grouper.due(T0 + 100) == []
    assert grouper.groups == {} or all(not g.notified for g in grouper.groups.values())


def test_silenced_alerts_are_left_out_then_announced_when_the_silence_ends() -> None:
    """A fires while silenced: left out. B resolves while silenced: its RESOLVED waits. When
    the silence ends, the receiver hears A is firing and B resolved."""
    engine, grouper = setup()
    silenced_symbol = {"A-USDT", "B-USDT"}

    def silenced(labels: dict[str, str]) -> bool:
        return labels.get("symbol") in silenced_symbol

    feed(engine, grouper, "B-USDT", 90, 0)
    silenced_symbol.discard("B-USDT")
    [first] = [n for n in grouper.due(T0 + 2, silenced) if n.receiver == "slack"]
    assert [a["subject"] for a in first.firing] == ["B-USDT"]
    silenced_symbol.add("B-USDT")
    feed(engine, grouper, "A-USDT", 90, 20)
    feed(engine, grouper, "B-USDT", 110, 21)
    assert [n for n in grouper.due(T0 + 60, silenced) if n.receiver == "slack"] == []
    silenced_symbol.clear()  # the silence ends (or is deleted)
    grouper.reconsider(T0 + 70)
    [after] = [n for n in grouper.due(T0 + 70, silenced) if n.receiver == "slack"]
    assert [a["subject"] for a in after.firing] == ["A-USDT"]
    assert [a["subject"] for a in after.resolved] == ["B-USDT"]


def test_grouping_state_survives_dump_and_load() -> None:
    engine, grouper = setup()
    feed(engine, grouper, "A-USDT", 90, 0)
    restored = Grouper(parse_rules(RULES))
    restored.load(grouper.dump())
    assert len(restored.due(T0 + 2)) == 2
    feed(engine, restored, "A-USDT", 110, 5)
    assert {n.receiver for n in restored.due(T0 + 40)} == {"slack", "tg"}
