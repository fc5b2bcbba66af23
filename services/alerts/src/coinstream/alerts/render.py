"""Message formatting per destination (pure): escaping and clean truncation.

Every renderer builds the same content (a title line, one line per alert, a footer) and cuts
whole alert lines when the destination's limit would be exceeded, ending with "... and N more".
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from coinstream.alerts.grouping import Notification

SLACK_TEXT_LIMIT = 3000  # per section block; also used for the top-level fallback text
SLACK_MAX_BLOCKS = 50
TELEGRAM_LIMIT = 4096
DISCORD_LIMIT = 2000

_ICON = {"critical": "\U0001f534", "warning": "\U0001f7e0", "info": "\U0001f535"}
_RESOLVED_ICON = "\u2705"


def title(n: Notification) -> str:
    """``[FIRING:2] btc-above-68k`` / ``[RESOLVED] ...`` / with the group's labels."""
    parts = []
    if n.firing:
        parts.append(f"FIRING:{len(n.firing)}")
    if n.resolved:
        parts.append(f"RESOLVED:{len(n.resolved)}")
    labels = " ".join(v for v in n.group_labels.values() if v) or "alerts"
    repeat = " (reminder)" if n.repeat else ""
    return f"[{', '.join(parts)}] {labels}{repeat}"


def alert_line(alert: dict[str, Any]) -> str:
    """Plain text line for one alert."""
    if alert["status"] == "resolved":
        return f"{_RESOLVED_ICON} RESOLVED {alert['subject']}: {alert['summary']}"
    icon = _ICON.get(alert["severity"], "")
    return f"{icon} {alert['severity'].upper()} {alert['subject']}: {alert['summary']}"


def _lines(n: Notification) -> list[tuple[str, dict[str, Any]]]:
    return [(alert_line(a), a) for a in [*n.firing, *n.resolved]]


def _fit(
    lines: list[str], limit: int, measure: Any = len, more: Any = None, sep_len: int = 1
) -> list[str]:
    """The longest prefix of ``lines`` that fits ``limit`` together with an "and N more" line."""
    more = more or (lambda k: f"\u2026 and {k} more")
    total = 0
    for i, line in enumerate(lines):
        total += measure(line) + sep_len
        if total > limit:
            kept = lines[:i]
            while (
                kept
                and sum(measure(x) + sep_len for x in kept) + measure(more(len(lines) - len(kept)))
                > limit
            ):
                kept.pop()
            return [*kept, more(len(lines) - len(kept))]
    return lines


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters at a line or word boundary, ending with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    for sep in ("\n", " "):
        pos = cut.rfind(sep)
        if pos > limit // 2:
            cut = cut[:pos]
            break
    return cut.rstrip() + "\u2026"


# ------------------------------------------------------------------------------------ Slack
def slack_escape(text: str) -> str:
    """Slack mrkdwn control characters: ``&``, ``<``, ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(n: Notification, channel: str | None = None) -> dict[str, Any]:
    """Blocks plus the ``text`` fallback (always present: notifications and screen readers)."""
    head = title(n)
    lines = [line for line, _ in _lines(n)]
    body = _fit([slack_escape(x) for x in lines], SLACK_TEXT_LIMIT - len(head) - 10)
    text = truncate(f"*{slack_escape(head)}*\n" + "\n".join(body), SLACK_TEXT_LIMIT)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(head, 150)}}
    ]
    room = SLACK_MAX_BLOCKS - 2
    shown = lines if len(lines) <= room else lines[: room - 1]
    for line in shown:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": truncate(slack_escape(line), SLACK_TEXT_LIMIT)},
            }
        )
    if len(shown) < len(lines):
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"\u2026 and {len(lines) - len(shown)} more"},
            }
        )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _footer(n)}]})
    payload: dict[str, Any] = {"text": text, "blocks": blocks}
    if channel:
        payload["channel"] = channel
    return payload


def _footer(n: Notification) -> str:
    when = datetime.fromtimestamp(n.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"coinstream alerts \u00b7 {when}"


# --------------------------------------------------------------------------------- Telegram
_MDV2_SPECIAL = set("_*[]()~`>#+-=|{}.!\\")


def telegram_md_escape(text: str) -> str:
    """Escape every MarkdownV2 special character with a backslash."""
    return "".join("\\" + c if c in _MDV2_SPECIAL else c for c in text)


def telegram_html_escape(text: str) -> str:
    return html.escape(text, quote=False)


def telegram_payload(n: Notification, chat_id: str, parse_mode: str) -> dict[str, Any]:
    """``sendMessage`` body, title in bold, at most 4096 characters after entity parsing."""
    head = title(n)
    lines = [line for line, _ in _lines(n)]
    if parse_mode == "HTML":
        esc = telegram_html_escape
        bold = f"<b>{esc(head)}</b>"
    else:
        esc = telegram_md_escape
        bold = f"*{esc(head)}*"
    # Telegram counts characters after parsing, so measure the plain text; escaped lines are
    # emitted whole, never cut inside an escape sequence or a tag.
    kept = _fit(lines, TELEGRAM_LIMIT - len(head) - 2)
    text = bold + "\n" + "\n".join(esc(x) for x in kept)
    return {
        "chat_id": chat_id,
        "text": text,
        "parse_mode": parse_mode,
        "link_preview_options": {"is_disabled": True},
    }


# ---------------------------------------------------------------------------------- Discord
_DISCORD_SPECIAL = set("\\*_~`|>#-[]()")


def discord_escape(text: str) -> str:
    return "".join("\\" + c if c in _DISCORD_SPECIAL else c for c in text)


def discord_payload(n: Notification) -> dict[str, Any]:
    """Webhook body: markdown ``content`` within 2000 characters; mentions disabled."""
    head = f"**{discord_escape(title(n))}**"
    lines = [discord_escape(line) for line, _ in _lines(n)]
    body = _fit(lines, DISCORD_LIMIT - len(head) - 1)
    return {
        "content": head + "\n" + "\n".join(body),
        "allowed_mentions": {"parse": []},
        "username": "coinstream alerts",
    }


# ------------------------------------------------------------------------------------ email
def email_message(n: Notification, sender: str, to: list[str], prefix: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = truncate(f"{prefix} {title(n)}".strip(), 200)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Message-ID"] = f"<{n.id}@coinstream.alerts>"
    msg["Date"] = format_datetime(datetime.fromtimestamp(n.created_at, UTC))
    body = [title(n), ""]
    for line, alert in _lines(n):
        body.append(line)
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert["labels"].items()))
        body.append(f"    labels: {labels}")
    body += ["", _footer(n)]
    msg.set_content("\n".join(body))
    return msg


# ---------------------------------------------------------------------------------- webhook
def webhook_payload(n: Notification) -> dict[str, Any]:
    """Generic JSON, close to Alertmanager's webhook format."""

    def iso(ts: float | None) -> str | None:
        return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()

    alerts = [
        {
            "status": a["status"],
            "fingerprint": a["fingerprint"],
            "rule_id": a["rule_id"],
            "rule_type": a["rule_type"],
            "severity": a["severity"],
            "subject": a["subject"],
            "summary": a["summary"],
            "labels": a["labels"],
            "value": a["value"],
            "threshold": a["threshold"],
            "starts_at": iso(a["fired_at"] or a["active_since"]),
            "ends_at": iso(a["ends_at"]),
        }
        for a in [*n.firing, *n.resolved]
    ]
    return {
        "version": "1",
        "id": n.id,
        "receiver": n.receiver,
        "status": "firing" if n.firing else "resolved",
        "title": title(n),
        "group_labels": n.group_labels,
        "repeat": n.repeat,
        "alerts": alerts,
    }
