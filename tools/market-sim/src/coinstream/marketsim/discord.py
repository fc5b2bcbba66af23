"""Discord webhook receiver: ``POST /discord/api/webhooks/{id}/{token}``.

Answers ``204`` (or ``200`` with the message when ``?wait=true``); ``400`` with Discord's error
JSON when there is no ``content``/``embeds`` or ``content`` exceeds 2000 characters. Fault
``discord.429``: ``429 {"message": "You are being rate limited.", "retry_after": N,
"global": false}`` with ``Retry-After``. Recorded under ``discord``.
"""

from __future__ import annotations

import itertools
import time

import orjson
from aiohttp import web

from coinstream.marketsim.app import SIM_KEY, Simulator
from coinstream.marketsim.slack import seconds_text, take_429

_ids = itertools.count(1)


async def execute_webhook(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    retry_after = take_429(sim, "discord.429")
    if retry_after is not None:
        return web.json_response(
            {"message": "You are being rate limited.", "retry_after": retry_after, "global": False},
            status=429,
            headers={"Retry-After": seconds_text(retry_after)},
        )
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return web.json_response(
            {"message": "Cannot send an empty message", "code": 50006}, status=400
        )
    if not isinstance(body, dict) or not (body.get("content") or body.get("embeds")):
        return web.json_response(
            {"message": "Cannot send an empty message", "code": 50006}, status=400
        )
    content = body.get("content") or ""
    if len(content) > 2000:
        return web.json_response(
            {
                "message": "Invalid Form Body",
                "code": 50035,
                "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}},
            },
            status=400,
        )
    message_id = str(next(_ids))
    sim.record(
        "discord",
        {"webhook": request.match_info["id"], "received_at": time.time(), "body": body},
    )
    if request.query.get("wait") == "true":
        return web.json_response({"id": message_id, "content": content})
    return web.Response(status=204)


def setup(app: web.Application, sim: Simulator) -> None:
    app.router.add_post("/discord/api/webhooks/{id}/{token}", execute_webhook)
