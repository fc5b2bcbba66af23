"""Generic JSON webhook receiver: ``POST /webhook/{path}`` records any JSON object (200).

``400`` for a body that is not a JSON object. Faults: ``webhook.429`` (429 with
``Retry-After``), ``webhook.500`` (that many 500 answers). Recorded under ``webhook``.
"""

from __future__ import annotations

import time

import orjson
from aiohttp import web

from coinstream.marketsim.app import SIM_KEY, Simulator
from coinstream.marketsim.slack import seconds_text, take_429


async def receive(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    retry_after = take_429(sim, "webhook.429")
    if retry_after is not None:
        return web.json_response(
            {"error": "rate limited"},
            status=429,
            headers={"Retry-After": seconds_text(retry_after)},
        )
    failures = sim.faults.get("webhook.500")
    if failures:
        sim.faults["webhook.500"] = int(failures) - 1
        if sim.faults["webhook.500"] <= 0:
            sim.faults.pop("webhook.500")
        return web.json_response({"error": "internal"}, status=500)
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return web.json_response({"error": "invalid JSON"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "a JSON object is required"}, status=400)
    sim.record(
        "webhook",
        {
            "path": request.match_info["path"],
            "received_at": time.time(),
            "headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
            "body": body,
        },
    )
    return web.json_response({"ok": True})


def setup(app: web.Application, sim: Simulator) -> None:
    app.router.add_post("/webhook/{path:.*}", receive)
