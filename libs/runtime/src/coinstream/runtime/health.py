"""``/healthz``, ``/readyz`` and Prometheus ``/metrics`` over HTTP (aiohttp)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from coinstream.runtime.settings import HttpSettings

log = logging.getLogger(__name__)

ReadyCheck = Callable[[], tuple[bool, str]]
"""Returns (ok, detail). All checks must be ok for ``/readyz`` to answer 200."""


def bound_port(runner: web.AppRunner, default: int) -> int:
    """The TCP port ``runner``'s site actually listens on (``default`` if none is known).

    ``AppRunner.addresses`` is aiohttp's public view of the bound sockets, so asking for port 0
    tells the caller which port the system chose.
    """
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[1], int):
            return address[1]
    return default


class HealthServer:
    """Serves liveness, readiness and metrics. ``async with`` starts and stops it."""

    def __init__(
        self,
        settings: HttpSettings,
        registry: CollectorRegistry = REGISTRY,
        extra_routes: list[web.RouteDef] | None = None,
    ) -> None:
        self._settings = settings
        self._registry = registry
        self._checks: dict[str, ReadyCheck] = {}
        self._app = web.Application()
        self._app.add_routes(
            [
                web.get("/healthz", self._healthz),
                web.get("/readyz", self._readyz),
                web.get("/metrics", self._metrics),
                *(extra_routes or []),
            ]
        )
        self._runner: web.AppRunner | None = None
        self.port: int = settings.port
        self.stopping = False

    def add_check(self, name: str, check: ReadyCheck) -> None:
        self._checks[name] = check

    def readiness(self) -> tuple[bool, dict[str, str]]:
        results: dict[str, str] = {}
        ok = not self.stopping
        if self.stopping:
            results["service"] = "stopping"
        for name, check in self._checks.items():
            try:
                good, detail = check()
            except Exception as exc:  # a broken check means not ready, never a crash
                good, detail = False, f"check failed: {exc!r}"
            results[name] = detail if good else f"FAIL: {detail}"
            ok = ok and good
        return ok, results

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        ok, results = self.readiness()
        body: dict[str, Any] = {"status": "ready" if ok else "unready", "checks": results}
        return web.json_response(body, status=200 if ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self._registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def start(self) -> None:
        if self._runner is not None:
            return
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._settings.host, self._settings.port)
        await site.start()
        self.port = bound_port(self._runner, self.port)
        log.info("health server listening", extra={"port": self.port})

    async def aclose(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
