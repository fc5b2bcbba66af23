"""Slack receivers that record every post.

- Incoming webhook ``POST /slack/webhook/{path}``: answers like Slack: ``200 ok`` (text/plain),
  ``400 no_text`` when neither ``text`` nor ``blocks`` is given, ``400 invalid_payload`` for
  non-JSON. Fault ``slack.429`` (seconds) answers the next post with 429 and that
  ``Retry-After`` once. Recorded under ``slack``.
- Web API ``POST /slack/api/chat.postMessage`` with ``Authorization: Bearer xoxb-...``: answers
  ``{"ok": true, "channel", "ts", "message"}`` or ``{"ok": false, "error": ...}``
  (``not_authed``, ``invalid_auth``, ``channel_not_found`` for channels starting with
  ``#missing``, ``no_text``, ``msg_too_long`` over 40,000 characters, ``invalid_blocks`` over 50
  blocks or a section text over 3,000). Blocks without ``text`` are accepted with the warning
  ``missing_text_in_blocks`` (recorded). Fault ``slack_api.429``: HTTP 429 with ``Retry-After``.
  Recorded under ``slack_api``.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import orjson
from aiohttp import web

from coinstream.marketsim.app import SIM_KEY, Simulator

_ts = itertools.count(1)


def take_429(sim: Simulator, name: str) -> float | None:
    """Consume one 429 from fault ``name``; return its retry-after seconds, or None.

    The fault value is a number of seconds (one 429, then normal service) or
    ``{"retry_after": N, "times": K}`` for K consecutive 429s. Shared by the chat receivers.
    """
    value: Any = sim.faults.get(name)
    if value is None:
        return None
    if isinstance(value, dict):
        times = int(value.get("times", 1))
        retry = float(value.get("retry_after", 1))
        if times <= 1:
            sim.faults.pop(name, None)
        else:
            sim.faults[name] = {**value, "times": times - 1}
        return retry
    sim.faults.pop(name, None)
    return float(value)


def seconds_text(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


async def incoming_webhook(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    retry_after = take_429(sim, "slack.429")
    if retry_after is not None:
        return web.Response(
            status=429, text="rate_limited", headers={"Retry-After": seconds_text(retry_after)}
        )
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return web.Response(status=400, text="invalid_payload")
    if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
        return web.Response(status=400, text="no_text")
    sim.record(
        "slack", {"path": request.match_info["path"], "received_at": time.time(), "body": body}
    )
    return web.Response(text="ok")


def _blocks_error(blocks: Any) -> str | None:
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        if not isinstance(block, dict) or "type" not in block:
            return "invalid_blocks"
        text = block.get("text")
        if isinstance(text, dict) and len(str(text.get("text", ""))) > 3000:
            return "invalid_blocks"
    return None


async def post_message(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    retry_after = take_429(sim, "slack_api.429")
    if retry_after is not None:
        return web.json_response(
            {"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": seconds_text(retry_after)},
        )
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return web.json_response({"ok": False, "error": "not_authed"})
    if not auth.removeprefix("Bearer ").startswith(("xoxb-", "xoxp-")):
        return web.json_response({"ok": False, "error": "invalid_auth"})
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return web.json_response({"ok": False, "error": "invalid_json"})
    if not isinstance(body, dict):
        return web.json_response({"ok": False, "error": "invalid_arguments"})
    channel = body.get("channel")
    if not channel:
        return web.json_response({"ok": False, "error": "channel_not_found"})
    if str(channel).startswith("#missing"):
        return web.json_response({"ok": False, "error": "channel_not_found"})
    text, blocks = body.get("text"), body.get("blocks")
    if not text and not blocks:
        return web.json_response({"ok": False, "error": "no_text"})
    if text and len(text) > 40_000:
        return web.json_response({"ok": False, "error": "msg_too_long"})
    if blocks is not None and (error := _blocks_error(blocks)):
        return web.json_response({"ok": False, "error": error})
    ts = f"{int(time.time())}.{next(_ts):06d}"
    answer: dict[str, Any] = {"ok": True, "channel": channel, "ts": ts, "message": body}
    if blocks and not text:
        answer["warning"] = "missing_text_in_blocks"
    sim.record(
        "slack_api",
        {
            "channel": channel,
            "received_at": time.time(),
            "body": body,
            "warning": answer.get("warning"),
        },
    )
    return web.json_response(answer)


def setup(app: web.Application, sim: Simulator) -> None:
    app.router.add_post("/slack/webhook/{path:.*}", incoming_webhook)
    app.router.add_post("/slack/api/chat.postMessage", post_message)
