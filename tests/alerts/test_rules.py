"""Rules-file validation: good files load, bad ones name the rule and field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from coinstream.alerts.errors import RulesError
from coinstream.alerts.rules import (
    PriceThresholdRule,
    load_rules,
    parse_duration,
    parse_rules,
)

REPO = Path(__file__).resolve().parents[2]

BASE = """
receivers:
  s: {type: slack_webhook, url_env: ALERTS_SLACK_WEBHOOK_URL}
rules:
"""


def test_demo_rules_file_is_valid_and_has_the_68k_rule() -> None:
    """deploy/local/alert-rules.yaml loads and fires on BTC-USDT above 68000."""
    rules = load_rules(REPO / "deploy" / "local" / "alert-rules.yaml")
    rule = next(r for r in rules.rules if r.id == "btc-above-68k")
    assert isinstance(rule, PriceThresholdRule)
    assert rule.threshold == Decimal(68000) and rule.direction == "above"
    assert rules.grouping.group_wait <= 2
    types = {r.type for r in rules.rules}
    assert {"percent_change", "feed_status", "sentiment"} <= types


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), (12, 12), ("2d", 172800)],
)
def test_durations_parse(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "m5", "", "-3s", "1x"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_error_names_rule_and_field() -> None:
    """A wrong field in the third rule is reported with the rule's id and the field name."""
    text = (
        BASE
        + """
  - {id: a, type: price_threshold, direction: above, threshold: 1}
  - {id: b, type: percent_change, window: 5m, percent: 3}
  - {id: c-bad, type: percent_change, window: soon, percent: 3}
"""
    )
    text = text.replace("rules:", "default_receivers: [s]\nrules:")
    with pytest.raises(RulesError) as info:
        parse_rules(text, "rules.yaml")
    message = str(info.value)
    assert "rule 'c-bad' (rules[2]) field 'window'" in message
    assert "rules.yaml" in message


def test_unknown_receiver_and_duplicate_ids_are_rejected() -> None:
    text = BASE + "  - {id: a, type: no_data, timeout: 5s, receivers: [nope]}\n"
    with pytest.raises(RulesError, match=r"rule 'a'.*unknown receiver 'nope'"):
        parse_rules(text)
    text = (
        BASE
        + "  - {id: a, type: no_data, timeout: 5s, receivers: [s]}\n"
        + "  - {id: a, type: no_data, timeout: 9s, receivers: [s]}\n"
    )
    with pytest.raises(RulesError, match="duplicate id"):
        parse_rules(text)


def test_unknown_fields_and_types_are_rejected() -> None:
    with pytest.raises(RulesError, match="field 'treshold'"):
        parse_rules(
            BASE
            + "  - {id: a, type: price_threshold, direction: above, threshold: 1,"
            + " treshold: 2, receivers: [s]}\n"
        )
    with pytest.raises(RulesError, match="rule 'z'"):
        parse_rules(BASE + "  - {id: z, type: moon_phase, receivers: [s]}\n")


def test_secrets_must_come_from_alerts_env_vars() -> None:
    """A receiver cannot carry a literal URL; it names an ALERTS_* variable."""
    text = "receivers:\n  s: {type: slack_webhook, url_env: 'https://hooks.example/x'}\n"
    with pytest.raises(RulesError, match="receiver 's' field 'url_env'"):
        parse_rules(text)


def test_rearm_level_by_amount_and_percent() -> None:
    rules = parse_rules(
        BASE
        + "  - {id: a, type: price_threshold, direction: above, threshold: 100,"
        + " rearm_amount: 5, receivers: [s]}\n"
        + "  - {id: b, type: price_threshold, direction: below, threshold: 100,"
        + " rearm_percent: 2, receivers: [s]}\n"
    )
    a, b = rules.rules
    assert isinstance(a, PriceThresholdRule) and isinstance(b, PriceThresholdRule)
    assert a.rearm_level == Decimal(95)
    assert b.rearm_level == Decimal(102)


def test_empty_or_non_mapping_files_are_reported() -> None:
    assert parse_rules("").rules == []
    with pytest.raises(RulesError, match="top level must be a mapping"):
        parse_rules("- a\n- b\n")
    with pytest.raises(RulesError, match="not valid YAML"):
        parse_rules("rules: [\n")
