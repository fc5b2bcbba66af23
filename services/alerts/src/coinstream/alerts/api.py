"""The small HTTP API on the service port (next to /healthz, /readyz, /metrics).

- ``GET  /api/v1/alerts``                  pending and firing alerts of this replica's partitions
- ``GET  /api/v1/silences``                all silences (``?active=1``: only active ones)
- ``POST /api/v1/silences``                ``{"matchers": [{"name", "value", "op"}],
  "duration": "2h" | "ends_at": RFC 3339, "starts_at": RFC 3339, "comment", "created_by"}``
  -> 201 ``{"id", "starts_at", "ends_at"}`` (times in RFC 3339, UTC)
- ``DELETE /api/v1/silences/{id}``         expire a silence now
- ``GET  /api/v1/outbox``                  notifications waiting per destination
- ``POST /-/reload``                       reload the rules file (400 keeps the old rules)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from coinstream.alerts.errors import RulesError
from coinstream.alerts.rules import parse_duration
from coinstream.alerts.service import AlertService
from coinstream.alerts.silences import Silence, at
from coinstream.runtime import ConfigurationError

Reload = Callable[[], Awaitable[int]]


def routes(service: AlertService, reload: Reload) -> list[web.RouteDef]:
    async def list_alerts(request: web.Request) -> web.Response:
        return web.json_response([a.dump() for a in service.alerts()])

    async def list_silences(request: web.Request) -> web.Response:
        now = time.time()
        items = [
            s
            for s in service.silences.values()
            if request.query.get("active") != "1" or s.active(now)
        ]
        return web.json_response(
            [{**s.model_dump(mode="json"), "active": s.active(now)} for s in items]
        )

    async def add_silence(request: web.Request) -> web.Response:
        try:
            body: dict[str, Any] = await request.json()
            now = time.time()
            starts_at = _time(body.get("starts_at"), now)
            if "ends_at" in body:
                ends_at = _time(body["ends_at"], now)
            else:
                ends_at = starts_at + parse_duration(body.get("duration", "1h"))
            silence = Silence(
                matchers=body.get("matchers", []),
                starts_at=at(starts_at),
                ends_at=at(ends_at),
                created_by=str(body.get("created_by", "")),
                comment=str(body.get("comment", "")),
            )
            if silence.ends_at <= silence.starts_at:
                raise ValueError("ends_at must be after starts_at")
        except (ValueError, ValidationError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        await service.add_silence(silence)
        return web.json_response(_times(silence), status=201)

    async def expire_silence(request: web.Request) -> web.Response:
        silence = await service.expire_silence(request.match_info["id"], time.time())
        if silence is None:
            return web.json_response({"error": "no such silence"}, status=404)
        return web.json_response(_times(silence))

    async def outbox(request: web.Request) -> web.Response:
        queues = service.dispatcher.queues
        return web.json_response({d: len(q) for d, q in queues.items() if q})

    async def reload_rules(request: web.Request) -> web.Response:
        try:
            count = await reload()
        except (RulesError, ConfigurationError) as exc:
            return web.json_response({"error": str(exc), "kept": "previous rules"}, status=400)
        return web.json_response({"rules": count})

    return [
        web.get("/api/v1/alerts", list_alerts),
        web.get("/api/v1/silences", list_silences),
        web.post("/api/v1/silences", add_silence),
        web.delete("/api/v1/silences/{id}", expire_silence),
        web.get("/api/v1/outbox", outbox),
        web.post("/-/reload", reload_rules),
    ]


def _times(silence: Silence) -> dict[str, Any]:
    data = silence.model_dump(mode="json", include={"id", "starts_at", "ends_at"})
    return dict(data)


def _time(value: Any, default: float) -> float:
    """An RFC 3339 time with an offset (``2026-01-01T12:00:00Z``) as epoch seconds."""
    if value is None:
        return default
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            raise ValueError("times need a timezone, e.g. 2026-01-01T12:00:00Z")
        return parsed.timestamp()
    raise ValueError(f"not an RFC 3339 time: {value!r} (e.g. 2026-01-01T12:00:00Z)")
