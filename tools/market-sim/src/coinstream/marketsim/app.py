"""The simulator's HTTP/WebSocket application and its plugin registry.

Each source or receiver is a module exposing ``setup(app: web.Application, sim: Simulator)``,
registered under the entry-point group ``coinstream.marketsim.routes`` in
``tools/market-sim/pyproject.toml``. One aiohttp server serves them all on one port:

- ``/binance/...``, ``/coinbase/...``, ``/kraken/...``: exchange WebSockets
- ``/coingecko/api/v3/...``, ``/cmc/...``, ``/feargreed/fng/``: REST sources
- ``/slack/...``, ``/telegram/...``: chat receivers that record what they get
- ``/_sim/...``: control (set prices, inject faults, read recordings)
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from importlib.metadata import entry_points
from typing import Any

from aiohttp import web

from coinstream.marketsim.market import Market

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "coinstream.marketsim.routes"
SIM_KEY: web.AppKey[Simulator] = web.AppKey("simulator")


@dataclass
class Simulator:
    """Shared state for every plugin: the market, fault switches and recordings."""

    market: Market
    faults: dict[str, Any] = field(default_factory=dict)
    plugin_errors: dict[str, str] = field(default_factory=dict)
    recordings: dict[str, list[Any]] = field(default_factory=dict)

    def record(self, channel: str, item: Any) -> None:
        self.recordings.setdefault(channel, []).append(item)


def load_plugins() -> tuple[dict[str, Any], dict[str, str]]:
    """Load every registered plugin; a plugin that fails to import is reported, not fatal."""
    plugins: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            plugins[ep.name] = ep.load()
        except Exception as exc:  # one broken plugin must not take the others down
            errors[ep.name] = repr(exc)
            log.error("simulator plugin %s failed to load: %r", ep.name, exc)
    return plugins, errors


async def _set_price(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    body = await request.json()
    try:
        sim.market.set_price(body["symbol"], Decimal(str(body["price"])))
    except KeyError as exc:
        return web.json_response({"error": f"unknown symbol or field {exc}"}, status=400)
    return web.json_response({"symbol": body["symbol"], "price": str(body["price"])})


async def _state(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    return web.json_response(
        {
            "prices": {s: str(sim.market.price(s)) for s in sim.market.instruments},
            "faults": {k: repr(v) for k, v in sim.faults.items()},
            "plugin_errors": sim.plugin_errors,
            "recordings": {k: len(v) for k, v in sim.recordings.items()},
        }
    )


async def _set_fault(request: web.Request) -> web.Response:
    """``POST /_sim/faults {"name": ..., "value": ...}``; value null clears the fault."""
    sim = request.app[SIM_KEY]
    body = await request.json()
    if body.get("value") is None:
        sim.faults.pop(body["name"], None)
    else:
        sim.faults[body["name"]] = body["value"]
    return web.json_response({"faults": sim.faults})


async def _recordings(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    name = request.match_info["name"]
    if request.method == "DELETE":
        sim.recordings.pop(name, None)
        return web.json_response({"cleared": name})
    return web.json_response(sim.recordings.get(name, []))


def create_app(market: Market | None = None, run_market: bool = True) -> web.Application:
    sim = Simulator(market or Market())
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[SIM_KEY] = sim
    app.add_routes(
        [
            web.get("/_sim/state", _state),
            web.post("/_sim/price", _set_price),
            web.post("/_sim/faults", _set_fault),
            web.get("/_sim/recordings/{name}", _recordings),
            web.delete("/_sim/recordings/{name}", _recordings),
        ]
    )
    plugins, sim.plugin_errors = load_plugins()
    for name, setup in sorted(plugins.items()):
        setup(app, sim)
        log.debug("simulator plugin loaded", extra={"plugin": name})

    if run_market:

        async def _market_ctx(app: web.Application) -> Any:
            task = asyncio.create_task(sim.market.run(), name="market")
            yield
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        app.cleanup_ctx.append(_market_ctx)
    return app
