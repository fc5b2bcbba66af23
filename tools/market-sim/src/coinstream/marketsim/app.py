"""The simulator's HTTP/WebSocket application and its plugin registry.

Each source or receiver is a module exposing ``setup(app: web.Application, sim: Simulator)``,
registered under the entry-point group ``coinstream.marketsim.routes`` in
``tools/market-sim/pyproject.toml``. One aiohttp server serves them all on one port:

- ``/binance/...``, ``/coinbase/...``, ``/kraken/...``: exchange WebSockets (and REST history)
- ``/coingecko/api/v3/...``, ``/cmc/...``, ``/feargreed/fng/``: REST sources
- ``/slack/...``, ``/telegram/...``, ``/discord/...``, ``/webhook/...``: chat and webhook
  receivers that record what they get; the SMTP receiver listens on its own port
  (``sim.listening["smtp"]``, ``--smtp-port``)
- ``/_sim/...``: the controls below

Controls (JSON bodies; every answer is JSON):

- ``GET /_sim/state``: tape prices, fair values, divergences, faults, recordings (counts),
  listeners (the SMTP address) and plugin errors.
- ``POST /_sim/price {"symbol": "BTC-USDT", "price": "69000"}``: move the asset's fair value so
  that this instrument trades at that price now; every venue follows at its next trade and
  every aggregator after its lag.
- ``POST /_sim/diverge {"venue": "kraken", "percent": 2, "symbol": "BTC-USD"}``: move one
  venue's prices (of one instrument, or all without ``symbol``) that percent away from the
  market, for spread alerts; ``"percent": null`` (or 0) ends it.
- ``GET|POST /_sim/assets/{asset}`` (CoinGecko id, symbol or CMC id): read or change an
  asset's metadata, ``{"name": ..., "description": ..., "links": {"website": ..., "reddit":
  ..., "source_code": ...}}`` (any part); CoinGecko ``/coins/{id}`` and ``/coins/markets``
  and CoinMarketCap info, listings and quotes serve the new values at once.
- ``POST /_sim/faults {"name": ..., "value": ...}``: scripted faults (``wsfaults.py``,
  ``rest.py``, the receivers); ``"value": null`` clears one.
- ``GET|DELETE /_sim/recordings/{name}``: what a receiver recorded (``slack``, ``slack_api``,
  ``telegram``, ``discord``, ``webhook``, ``smtp``) or a source was asked
  (``<source>.requests``), or clear it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from importlib.metadata import entry_points
from typing import Any

from aiohttp import web

from coinstream.marketsim import assets
from coinstream.marketsim.market import Market

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "coinstream.marketsim.routes"
SIM_KEY: web.AppKey[Simulator] = web.AppKey("simulator")


@dataclass
class Simulator:
    """Shared state for every plugin: the market, asset metadata, fault switches, recordings.

    ``host`` and ``ports`` say where plugins with a listener of their own (the SMTP receiver)
    listen (port 0: any free port); they put the address they got in ``listening``.
    """

    market: Market
    assets: assets.AssetBook = field(default_factory=assets.AssetBook)
    faults: dict[str, Any] = field(default_factory=dict)
    plugin_errors: dict[str, str] = field(default_factory=dict)
    recordings: dict[str, list[Any]] = field(default_factory=dict)
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=dict)
    listening: dict[str, tuple[str, int]] = field(default_factory=dict)

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


def _error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def _set_price(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    body = await _json_object(request)
    if body is None:
        return _error('send a JSON object {"symbol": "BTC-USDT", "price": "69000"}')
    try:
        price = Decimal(str(body["price"]))
        if not price.is_finite() or price <= 0:
            return _error(f"price must be a positive number, got {body['price']!r}")
        sim.market.set_price(body["symbol"], price)
    except ArithmeticError:  # not a number, or beyond the instrument's precision
        return _error(f"price must be a positive number of sensible size, got {body['price']!r}")
    except KeyError as exc:
        return _error(f"unknown symbol or field {exc}")
    return web.json_response({"symbol": body["symbol"], "price": str(body["price"])})


def _divergences(sim: Simulator) -> list[dict[str, Any]]:
    return [
        {"venue": d.venue, "symbol": d.symbol, "percent": d.percent}
        for d in sim.market.divergences()
    ]


async def _diverge(request: web.Request) -> web.Response:
    """``POST /_sim/diverge {"venue": ..., "percent": 2 | null, "symbol": optional}``."""
    sim = request.app[SIM_KEY]
    body = await _json_object(request)
    if body is None or "venue" not in body:
        return _error('send a JSON object {"venue": "kraken", "percent": 2}; percent null ends it')
    venue, symbol, percent = body["venue"], body.get("symbol"), body.get("percent")
    if venue not in sim.market.venues:
        return _error(f"unknown venue {venue!r}: one of {', '.join(sim.market.venues)}")
    if symbol is not None and symbol not in sim.market.instruments:
        return _error(f"unknown symbol {symbol!r}: one of {', '.join(sim.market.instruments)}")
    if percent is not None and (isinstance(percent, bool) or not isinstance(percent, int | float)):
        return _error(f"percent must be a number or null, got {percent!r}")
    try:
        sim.market.diverge(venue, percent, symbol)
    except ValueError as exc:
        return _error(str(exc))
    return web.json_response({"divergences": _divergences(sim)})


async def _asset(request: web.Request) -> web.Response:
    """``GET|POST /_sim/assets/{asset}``: an asset's metadata, or change it."""
    sim = request.app[SIM_KEY]
    asset = assets.find(request.match_info["asset"])
    if asset is None:
        known = ", ".join(a.cg_id for a in assets.ASSETS)
        return _error(f"unknown asset {request.match_info['asset']!r}: one of {known}", 404)
    if request.method == "POST":
        changes = await _json_object(request)
        if changes is None:
            return _error('send a JSON object, e.g. {"name": "Bitcoin", "description": "..."}')
        try:
            sim.assets.update(asset, changes)
        except assets.MetadataError as exc:
            return _error(str(exc))
    meta = sim.assets.metadata(asset)
    return web.json_response(
        {
            "asset": asset.cg_id,
            "symbol": asset.symbol,
            "name": meta.name,
            "description": meta.description,
            "links": {k: getattr(meta.links, k) for k in assets.LINK_FIELDS},
        }
    )


async def _state(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    market = sim.market
    return web.json_response(
        {
            "prices": {s: str(market.price(s)) for s in market.instruments},
            "fair_values": {a: str(market.fair_value(a)) for a in sorted(market.assets)},
            "venues": market.venues,
            "divergences": _divergences(sim),
            "faults": {k: repr(v) for k, v in sim.faults.items()},
            "plugin_errors": sim.plugin_errors,
            "recordings": {k: len(v) for k, v in sim.recordings.items()},
            "listening": {k: f"{h}:{p}" for k, (h, p) in sim.listening.items()},
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


def create_app(
    market: Market | None = None,
    run_market: bool = True,
    host: str = "127.0.0.1",
    ports: dict[str, int] | None = None,
) -> web.Application:
    """The simulator application; ``host`` and ``ports`` (e.g. ``{"smtp": 2525}``) place the
    plugins' own listeners."""
    sim = Simulator(market or Market(), host=host, ports=dict(ports or {}))
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[SIM_KEY] = sim
    app.add_routes(
        [
            web.get("/_sim/state", _state),
            web.post("/_sim/price", _set_price),
            web.post("/_sim/diverge", _diverge),
            web.get("/_sim/assets/{asset}", _asset),
            web.post("/_sim/assets/{asset}", _asset),
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
