"""Slack incoming-webhook receiver that records every post (``POST /slack/webhook/{path}``).

Answers like Slack: ``200 ok`` (text/plain), ``400 no_text`` when neither ``text`` nor
``blocks`` is given, ``400 invalid_payload`` for non-JSON. Fault ``slack.429`` (a number of
seconds) answers the next post with 429 and that ``Retry-After`` once.
"""

from __future__ import annotations

import time

import orjson
from aiohttp import web

from coinstream.marketsim.app import SIM_KEY, Simulator


async def incoming_webhook(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    retry_after = sim.faults.pop("slack.429", None)
    if retry_after is not None:
        return web.Response(
            status=429, text="rate_limited", headers={"Retry-After": str(retry_after)}
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


def setup(app: web.Application, sim: Simulator) -> None:
    app.router.add_post("/slack/webhook/{path:.*}", incoming_webhook)
