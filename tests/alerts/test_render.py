"""Formatting per destination: escaping and clean truncation (pure)."""

from __future__ import annotations

from email import message_from_bytes
from typing import Any

from coinstream.alerts import render
from coinstream.alerts.grouping import Notification


def alert(
    i: int, summary: str = "price crossed above 68000: 69000.5", status: str = "firing"
) -> dict[str, Any]:
    return {
        "fingerprint": f"fp{i}",
        "rule_id": "btc-above-68k",
        "rule_type": "price_threshold",
        "severity": "critical",
        "subject": f"C{i:03d}-USDT",
        "summary": summary,
        "labels": {"alertname": "btc-above-68k", "symbol": f"C{i:03d}-USDT"},
        "receivers": ["s"],
        "status": status,
        "value": "69000.5",
        "threshold": "68000",
        "active_since": 1_760_000_000.0,
        "fired_at": 1_760_000_000.0,
        "ends_at": None,
        "send_resolved": True,
        "repeat_interval": None,
    }


def note(n: int, summary: str = "price crossed above 68000: 69000.5") -> Notification:
    return Notification(
        id="n1",
        receiver="s",
        group_key="s|alertname=btc-above-68k",
        group_labels={"alertname": "btc-above-68k"},
        firing=[alert(i, summary) for i in range(n)],
        resolved=[],
        created_at=1_760_000_000.0,
    )


def test_slack_payload_has_text_and_blocks_and_escapes_control_characters() -> None:
    payload = render.slack_payload(note(1, "a <b> & c"), channel="#alerts")
    assert payload["channel"] == "#alerts"
    assert "a &lt;b&gt; &amp; c" in payload["text"]
    assert payload["blocks"][0]["type"] == "header"
    assert "&lt;b&gt;" in payload["blocks"][1]["text"]["text"]


def test_slack_truncates_to_block_and_text_limits() -> None:
    payload = render.slack_payload(note(400))
    assert len(payload["blocks"]) <= render.SLACK_MAX_BLOCKS
    assert len(payload["text"]) <= render.SLACK_TEXT_LIMIT
    assert "more" in payload["text"] and "more" in payload["blocks"][-2]["text"]["text"]


def test_telegram_markdown_v2_escapes_every_reserved_character() -> None:
    text = render.telegram_md_escape("BTC-USDT crossed 68000.5 (+2.1%) [x]!_*~`>#=|{}\\")
    assert text == (
        "BTC\\-USDT crossed 68000\\.5 \\(\\+2\\.1%\\) \\[x\\]\\!\\_\\*\\~\\`\\>\\#\\=\\|\\{\\}\\\\"
    )


def test_telegram_html_escapes_markup() -> None:
    payload = render.telegram_payload(note(1, "x < y & z"), "42", "HTML")
    assert payload["text"].startswith("<b>")
    assert "x &lt; y &amp; z" in payload["text"]


def test_telegram_truncates_whole_lines_within_4096() -> None:
    payload = render.telegram_payload(note(300), "42", "MarkdownV2")
    plain = payload["text"].replace("\\", "")
    assert len(plain) <= render.TELEGRAM_LIMIT
    assert payload["text"].rstrip().endswith("more")


def test_discord_content_within_2000_and_mentions_disabled() -> None:
    payload = render.discord_payload(note(100, "@everyone *bold* move"))
    assert len(payload["content"]) <= render.DISCORD_LIMIT
    assert payload["allowed_mentions"] == {"parse": []}
    assert "\\*bold\\*" in payload["content"]


def test_email_has_subject_and_every_alert() -> None:
    msg = render.email_message(note(3), "alerts@example.org", ["ops@example.org"], "[cs]")
    parsed = message_from_bytes(msg.as_bytes())
    assert parsed["Subject"].startswith("[cs] [FIRING:3]")
    assert parsed["Date"] == "Thu, 09 Oct 2025 08:53:20 +0000"  # created_at, RFC 5322
    body = parsed.get_payload(decode=True).decode()
    assert body.count("CRITICAL") == 3 and "symbol=C002-USDT" in body


def test_webhook_payload_lists_alerts_with_iso_times() -> None:
    payload = render.webhook_payload(note(2))
    assert payload["status"] == "firing" and len(payload["alerts"]) == 2
    assert payload["alerts"][0]["starts_at"].startswith("2025-10-09T")


def test_truncate_cuts_at_a_boundary() -> None:
    assert render.truncate("short", 10) == "short"
    cut = render.truncate("word " * 100, 50)
    assert len(cut) <= 50 and cut.endswith("\u2026") and not cut.endswith(" \u2026")
