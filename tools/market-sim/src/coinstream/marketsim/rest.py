"""Shared pieces of the simulated REST sources: prices, request recording, scriptable faults.

Every REST plugin (CoinGecko, CoinMarketCap, CMC DEX, alternative.me) derives its numbers from
the market's fair values, each with its own lag (an ``AggregatorProfile`` the plugin declares),
takes asset metadata from ``sim.assets`` (``assets.py``), records each request it serves under
``<provider>.requests`` (path, query, key headers, arrival time) and consults the fault list
``sim.faults["<provider>.faults"]`` before answering. A fault is a dict::

    {"kind": "rate_limit", "retry_after": 2, "format": "json" | "html", "count": 1,
     "path": "/simple/price", "code": 1008}
    {"kind": "status", "status": 503, "count": 2}   # HTTP error with a provider error body
    {"kind": "error_code", "code": 1006}             # CMC: error body on HTTP 200
    {"kind": "malformed"}                            # truncated JSON with HTTP 200
    {"kind": "html"}                                 # an HTML page with HTTP 200
    {"kind": "slow", "delay_s": 3}                   # answer normally, but late

``count`` (default 1; -1 = forever) is how many matching requests it affects; ``path`` (optional)
restricts it to request paths containing that text. Faults are set in-process
(``sim.faults[...] = [...]``) or with ``POST /_sim/faults {"name": ..., "value": [...]}``.
``sim.faults["<provider>.api_key"] = "k"`` makes the provider require that key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from coinstream.marketsim.app import SIM_KEY, Simulator
from coinstream.marketsim.assets import Asset
from coinstream.marketsim.fairvalue import AggregatorProfile

KEY_HEADERS = ("x-cg-demo-api-key", "x-cg-pro-api-key", "X-CMC_PRO_API_KEY", "Accept")


def price(sim: Simulator, asset: Asset, lag: AggregatorProfile) -> Decimal:
    """The asset's USD price as an aggregator following ``lag`` quotes it now: a delayed,
    smoothed fair value (``Market.aggregate``)."""
    return sim.market.aggregate(asset.symbol, lag)


def change_24h_pct(sim: Simulator, asset: Asset, lag: AggregatorProfile) -> float:
    """Change since the market opened (the simulator's stand-in for the last 24 hours)."""
    return float((price(sim, asset, lag) / sim.market.opening_value(asset.symbol) - 1) * 100)


def volume_24h(sim: Simulator, asset: Asset, lag: AggregatorProfile) -> float:
    """A 24 h USD volume of about 3% of market cap."""
    return market_cap(sim, asset, lag) * 0.03


def market_cap(sim: Simulator, asset: Asset, lag: AggregatorProfile) -> float:
    return float(price(sim, asset, lag) * asset.circulating)


def iso_ms(ts: datetime | None = None) -> str:
    """``2024-04-07T16:49:31.736Z``: ISO-8601 with milliseconds and ``Z``."""
    ts = ts or datetime.now(UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def sim_of(request: web.Request) -> Simulator:
    return request.app[SIM_KEY]


def record_request(sim: Simulator, provider: str, request: web.Request) -> None:
    """Record what a client sent, so tests can check paths, parameters and key headers."""
    sim.record(
        f"{provider}.requests",
        {
            "path": request.path,
            "query": dict(request.query),
            "headers": {h: request.headers[h] for h in KEY_HEADERS if h in request.headers},
            "at": time.time(),
        },
    )


def take_fault(sim: Simulator, provider: str, path: str) -> dict[str, Any] | None:
    """Pop one use of the first fault for ``provider`` matching ``path`` (None if none)."""
    faults = sim.faults.get(f"{provider}.faults")
    if not faults:
        return None
    for fault in list(faults):
        if fault.get("path") and fault["path"] not in path:
            continue
        count = int(fault.get("count", 1))
        if count > 0:
            count -= 1
            fault["count"] = count
            if count == 0:
                faults.remove(fault)
        return dict(fault)
    return None


ErrorBody = Callable[[dict[str, Any]], web.Response]


async def apply_fault(
    sim: Simulator,
    provider: str,
    request: web.Request,
    *,
    rate_limit: ErrorBody,
    status: ErrorBody,
    error_code: ErrorBody | None = None,
) -> web.Response | None:
    """Answer with a scripted fault, or return None to answer normally (maybe late)."""
    fault = take_fault(sim, provider, request.path)
    if fault is None:
        return None
    kind = fault.get("kind")
    if kind == "slow":
        await asyncio.sleep(float(fault.get("delay_s", 1.0)))
        return None
    if kind == "rate_limit":
        return rate_limit(fault)
    if kind == "status":
        return status(fault)
    if kind == "error_code" and error_code is not None:
        return error_code(fault)
    if kind == "malformed":
        return web.Response(
            text='{"data": [{"id": 1, "name": "Bitc', content_type="application/json"
        )
    if kind == "html":
        return web.Response(text="<html><body>maintenance</body></html>", content_type="text/html")
    return None


CLOUDFLARE_429 = """<!DOCTYPE html>
<html lang="en-US"><head><title>Access denied | api.coingecko.com used Cloudflare to restrict \
access</title></head><body><div id="cf-wrapper"><h1>Error 1015</h1>
<h2>You are being rate limited</h2></div></body></html>
"""


def retry_headers(fault: dict[str, Any]) -> dict[str, str]:
    value = fault.get("retry_after")
    return {} if value is None else {"Retry-After": str(value)}
