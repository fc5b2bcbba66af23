"""Telegram Bot API receiver: ``POST /telegram/bot{token}/sendMessage`` (JSON or form body).

Parses ``text`` like Telegram does for ``parse_mode`` ``MarkdownV2`` and ``HTML`` and rejects
what Telegram rejects (``400 Bad Request: can't parse entities: ...``), e.g. an unescaped ``.``
or ``-`` in MarkdownV2 or a bare ``<`` in HTML; ``400 message is too long`` when the text has
more than 4096 characters after parsing; ``401 Unauthorized`` for a malformed token. Fault
``telegram.429`` answers ``{"ok": false, "error_code": 429, "parameters": {"retry_after": N}}``.
Recorded under ``telegram`` with the parsed plain text.
"""

from __future__ import annotations

import html
import itertools
import re
import time
from typing import Any

import orjson
from aiohttp import web

from coinstream.marketsim.app import SIM_KEY, Simulator
from coinstream.marketsim.slack import seconds_text, take_429

MAX_LEN = 4096
_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_RESERVED = set("_*[]()~`>#+-=|{}.!")
_HTML_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
    "code", "pre", "blockquote", "tg-emoji",
}  # fmt: skip
_message_ids = itertools.count(1)


class EntityError(ValueError):
    """Text Telegram would refuse to parse."""


def parse_markdown_v2(text: str) -> str:
    """Return the plain text of a MarkdownV2 message, or raise ``EntityError``."""
    out: list[str] = []
    stack: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n or ord(text[i + 1]) > 126:
                raise EntityError(f"can't parse entities: bad escape at byte offset {i}")
            out.append(text[i + 1])
            i += 2
            continue
        if c == "`":
            fence = "```" if text.startswith("```", i) else "`"
            end = text.find(fence, i + len(fence))
            if end < 0:
                raise EntityError(
                    f"can't parse entities: Can't find end of code entity at byte offset {i}"
                )
            out.append(re.sub(r"\\(.)", r"\1", text[i + len(fence) : end]))
            i = end + len(fence)
            continue
        if c == "_" and text.startswith("__", i):
            _toggle(stack, "__", i)
            i += 2
            continue
        if c == "|" and text.startswith("||", i):
            _toggle(stack, "||", i)
            i += 2
            continue
        if c in "*_~":
            _toggle(stack, c, i)
            i += 1
            continue
        if c == "[":
            stack.append("[")
            i += 1
            continue
        if c == "]" and stack and stack[-1] == "[":
            stack.pop()
            if not text.startswith("(", i + 1):
                raise EntityError(
                    f"can't parse entities: Can't find end of a URL at byte offset {i}"
                )
            end = i + 2
            while end < n and text[end] != ")":
                end += 2 if text[end] == "\\" else 1
            if end >= n:
                raise EntityError(
                    f"can't parse entities: Can't find end of a URL at byte offset {i}"
                )
            i = end + 1
            continue
        if c == ">" and (i == 0 or text[i - 1] == "\n"):
            i += 1
            continue
        if c in _RESERVED:
            raise EntityError(
                f"can't parse entities: Character '{c}' is reserved and must be escaped with "
                "the preceding '\\'"
            )
        out.append(c)
        i += 1
    if stack:
        raise EntityError(f"can't parse entities: Can't find end of {stack[-1]} entity")
    return "".join(out)


def _toggle(stack: list[str], mark: str, pos: int) -> None:
    if stack and stack[-1] == mark:
        stack.pop()
    elif mark in stack:
        raise EntityError(f"can't parse entities: entity {mark} overlaps at byte offset {pos}")
    else:
        stack.append(mark)


_HTML_TOKEN = re.compile(r"<(/?)([a-zA-Z-]+)(\s[^<>]*)?>|&(#\d+|#x[0-9a-fA-F]+|lt|gt|amp|quot);")


def parse_html(text: str) -> str:
    """Return the plain text of an HTML-mode message, or raise ``EntityError``."""
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    for m in _HTML_TOKEN.finditer(text):
        _plain_html(text[pos : m.start()], pos, out)
        pos = m.end()
        if m.group(4):
            out.append(html.unescape(m.group(0)))
            continue
        closing, tag = m.group(1), m.group(2).lower()
        if tag not in _HTML_TAGS:
            raise EntityError(f'can\'t parse entities: Unsupported start tag "{tag}"')
        if closing:
            if not stack or stack[-1] != tag:
                raise EntityError(f'can\'t parse entities: Unmatched end tag "{tag}"')
            stack.pop()
        else:
            stack.append(tag)
    _plain_html(text[pos:], pos, out)
    if stack:
        raise EntityError(
            f"can't parse entities: Can't find end tag corresponding to start tag {stack[-1]}"
        )
    return "".join(out)


def _plain_html(chunk: str, offset: int, out: list[str]) -> None:
    for k, c in enumerate(chunk):
        if c in "<>&":
            raise EntityError(
                f"can't parse entities: Unexpected character {c!r} at byte offset {offset + k}; "
                "escape it as an HTML entity"
            )
    out.append(chunk)


def _error(code: int, description: str, **extra: Any) -> web.Response:
    return web.json_response(
        {"ok": False, "error_code": code, "description": description, **extra}, status=code
    )


async def send_message(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    if not _TOKEN.match(request.match_info["token"]):
        return _error(401, "Unauthorized")
    retry_after = take_429(sim, "telegram.429")
    if retry_after is not None:
        return _error(
            429,
            f"Too Many Requests: retry after {seconds_text(retry_after)}",
            parameters={
                "retry_after": int(retry_after) if retry_after == int(retry_after) else retry_after
            },
        )
    body: dict[str, Any]
    if request.content_type == "application/json":
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _error(400, "Bad Request: invalid JSON")
    else:
        body = dict(await request.post())
    if not isinstance(body, dict) or not body.get("chat_id"):
        return _error(400, "Bad Request: chat_id is empty")
    text = body.get("text")
    if not text:
        return _error(400, "Bad Request: message text is empty")
    mode = body.get("parse_mode")
    try:
        if mode == "MarkdownV2":
            plain = parse_markdown_v2(text)
        elif mode == "HTML":
            plain = parse_html(text)
        elif mode in (None, ""):
            plain = text
        else:
            return _error(400, f"Bad Request: unsupported parse_mode {mode}")
    except EntityError as exc:
        return _error(400, f"Bad Request: {exc}")
    if len(plain) > MAX_LEN:
        return _error(400, "Bad Request: message is too long")
    message_id = next(_message_ids)
    sim.record(
        "telegram",
        {
            "chat_id": body["chat_id"],
            "received_at": time.time(),
            "body": body,
            "plain": plain,
            "message_id": message_id,
        },
    )
    return web.json_response(
        {
            "ok": True,
            "result": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": body["chat_id"]},
                "text": plain,
            },
        }
    )


async def unknown_method(request: web.Request) -> web.Response:
    return _error(404, "Not Found")


def setup(app: web.Application, sim: Simulator) -> None:
    app.router.add_post("/telegram/bot{token}/sendMessage", send_message)
    app.router.add_post("/telegram/bot{token}/{method}", unknown_method)
