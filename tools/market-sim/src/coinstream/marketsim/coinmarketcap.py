"""CoinMarketCap Pro API (``/cmc/...``): listings latest, quotes latest, info, fear-and-greed.

Every body has the documented ``{"data": ..., "status": {...}}`` envelope with
``status.error_code`` 0 on success. The key travels in ``X-CMC_PRO_API_KEY`` (or the
``CMC_PRO_API_KEY`` query parameter). When ``sim.faults["coinmarketcap.api_key"]`` is set, a
missing key gets 401/1002 "API key missing." and a wrong one 401/1001 "This API Key is
invalid.". Faults (see ``rest.py``): ``rate_limit`` answers 429 with ``code`` (1008 default,
1009-1011 possible); ``error_code`` answers HTTP ``http_status`` (default 200) with that
error code in ``status``; ``status`` answers an HTTP error with a CMC error body.
Prices are the fair value ``LAG`` behind; names, descriptions and links come from
``sim.assets`` (changed with ``POST /_sim/assets/{asset}``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from coinstream.marketsim.app import Simulator
from coinstream.marketsim.assets import ASSETS, BY_CMC_ID, BY_SYMBOL, Asset
from coinstream.marketsim.fairvalue import AggregatorProfile
from coinstream.marketsim.rest import (
    apply_fault,
    change_24h_pct,
    iso_ms,
    json_response,
    market_cap,
    price,
    record_request,
    retry_headers,
    sim_of,
    volume_24h,
)

PROVIDER = "coinmarketcap"
PREFIX = "/cmc"
LAG = AggregatorProfile(delay_s=6.0, window_s=4.0)
"""CoinMarketCap quotes the fair value of 6 to 10 seconds ago (averaged)."""

ERROR_MESSAGES = {
    1001: "This API Key is invalid.",
    1002: "API key missing.",
    1003: "Your API Key must be activated. Please go to pro.coinmarketcap.com/account/plan.",
    1004: "Your API Key's subscription plan has expired.",
    1005: "An API Key is required for this call.",
    1006: "Your API Key subscription plan doesn't support this endpoint.",
    1007: "This API Key has been disabled. Please contact support.",
    1008: "You've exceeded your API Key's HTTP request rate limit. Rate limits reset every minute.",
    1009: "You've exceeded your API Key's daily rate limit.",
    1010: "You've exceeded your API Key's monthly rate limit.",
    1011: "You've hit an IP rate limit.",
}
HTTP_FOR_CODE = {1001: 401, 1002: 401, 1003: 402, 1004: 402, 1005: 403, 1006: 403, 1007: 403}


def status_object(
    error_code: int = 0, message: str | None = None, credits: int = 1
) -> dict[str, Any]:
    return {
        "timestamp": iso_ms(),
        "error_code": error_code,
        "error_message": message,
        "elapsed": 10,
        "credit_count": credits if error_code == 0 else 0,
        "notice": None,
    }


def error_response(
    code: int, http_status: int | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    status = http_status or HTTP_FOR_CODE.get(code, 429 if 1008 <= code <= 1011 else code)
    message = ERROR_MESSAGES.get(code, "Internal Server Error" if code >= 500 else "Bad request")
    return json_response({"status": status_object(code, message)}, status=status, headers=headers)


def _rate_limit(fault: dict[str, Any]) -> web.Response:
    return error_response(int(fault.get("code", 1008)), 429, retry_headers(fault))


def _status(fault: dict[str, Any]) -> web.Response:
    status = int(fault.get("status", 500))
    return error_response(status, status)


def _error_code(fault: dict[str, Any]) -> web.Response:
    return error_response(int(fault.get("code", 1006)), int(fault.get("http_status", 200)))


async def gate(request: web.Request, provider: str = PROVIDER) -> web.Response | None:
    """Record, check the key, apply faults (shared with the DEX endpoints)."""
    sim = sim_of(request)
    record_request(sim, provider, request)
    expected = sim.faults.get(f"{provider}.api_key")
    if expected:
        given = request.headers.get("X-CMC_PRO_API_KEY") or request.query.get("CMC_PRO_API_KEY")
        if not given:
            return error_response(1002)
        if given != expected:
            return error_response(1001)
    return await apply_fault(
        sim, provider, request, rate_limit=_rate_limit, status=_status, error_code=_error_code
    )


def _quote(sim: Simulator, asset: Asset) -> dict[str, Any]:
    change = change_24h_pct(sim, asset, LAG)
    cap = market_cap(sim, asset, LAG)
    total = sum(market_cap(sim, a, LAG) for a in ASSETS) / 0.85
    usd = float(price(sim, asset, LAG))
    return {
        "price": usd,
        "volume_24h": volume_24h(sim, asset, LAG),
        "volume_change_24h": 1.5,
        "percent_change_1h": change / 24,
        "percent_change_24h": change,
        "percent_change_7d": change * 2,
        "percent_change_30d": change * 3,
        "market_cap": cap,
        "market_cap_dominance": cap / total * 100,
        "fully_diluted_market_cap": usd * (asset.max_supply or asset.circulating),
        "last_updated": iso_ms(),
    }


def _coin(sim: Simulator, asset: Asset, converts: list[str]) -> dict[str, Any]:
    return {
        "id": asset.cmc_id,
        "name": sim.assets.metadata(asset).name,
        "symbol": asset.symbol,
        "slug": asset.slug,
        "is_active": 1,
        "is_fiat": 0,
        "circulating_supply": asset.circulating,
        "total_supply": asset.max_supply or asset.circulating,
        "max_supply": asset.max_supply,
        "infinite_supply": asset.max_supply is None,
        "date_added": asset.date_added,
        "num_market_pairs": 1000 // asset.rank,
        "cmc_rank": asset.rank,
        "last_updated": iso_ms(),
        "tags": ["mineable"] if asset.symbol == "BTC" else [],
        "platform": None,
        "self_reported_circulating_supply": None,
        "self_reported_market_cap": None,
        "tvl_ratio": None,
        "quote": {c: _quote(sim, asset) for c in converts},
    }


def _converts(request: web.Request) -> list[str]:
    return [c.upper() for c in request.query.get("convert", "USD").split(",") if c]


async def listings_latest(request: web.Request) -> web.Response:
    if (resp := await gate(request)) is not None:
        return resp
    sim = sim_of(request)
    start = max(1, int(request.query.get("start", "1")))
    limit = min(5000, max(1, int(request.query.get("limit", "100"))))
    converts = _converts(request)
    ranked = sorted(ASSETS, key=lambda a: -market_cap(sim, a, LAG))[start - 1 : start - 1 + limit]
    credits = math.ceil(max(1, len(ranked)) / 200) + len(converts) - 1
    return json_response(
        {
            "status": status_object(credits=credits),
            "data": [_coin(sim, a, converts) for a in ranked],
        }
    )


def _lookup(request: web.Request) -> tuple[str, list[Asset]] | web.Response:
    if "id" in request.query:
        try:
            ids = [int(i) for i in request.query["id"].split(",") if i]
        except ValueError:
            return error_response(400, 400)
        return "id", [BY_CMC_ID[i] for i in ids if i in BY_CMC_ID]
    if "symbol" in request.query:
        syms = [s.upper() for s in request.query["symbol"].split(",") if s]
        return "symbol", [BY_SYMBOL[s] for s in syms if s in BY_SYMBOL]
    if "slug" in request.query:
        slugs = request.query["slug"].split(",")
        return "slug", [a for a in ASSETS if a.slug in slugs]
    return json_response(
        {"status": status_object(400, '"value" must contain at least one of [id, symbol, slug]')},
        status=400,
    )


def _key(by: str, asset: Asset) -> str:
    return {"id": str(asset.cmc_id), "symbol": asset.symbol, "slug": str(asset.cmc_id)}[by]


async def quotes_latest(request: web.Request) -> web.Response:
    """``data`` keyed by id (or slug -> id); a symbol lookup gives an array per symbol (v2)."""
    if (resp := await gate(request)) is not None:
        return resp
    sim = sim_of(request)
    found = _lookup(request)
    if isinstance(found, web.Response):
        return found
    by, assets = found
    converts = _converts(request)
    data: dict[str, Any] = {}
    for asset in assets:
        row = _coin(sim, asset, converts)
        data[_key(by, asset)] = [row] if by == "symbol" else row
    credits = max(1, math.ceil(len(assets) / 100)) + len(converts) - 1
    return json_response({"status": status_object(credits=credits), "data": data})


async def info(request: web.Request) -> web.Response:
    if (resp := await gate(request)) is not None:
        return resp
    found = _lookup(request)
    if isinstance(found, web.Response):
        return found
    by, assets = found
    book = sim_of(request).assets
    data: dict[str, Any] = {}
    for a in assets:
        meta = book.metadata(a)
        row = {
            "urls": {
                "website": [meta.links.website],
                "technical_doc": [],
                "twitter": [],
                "reddit": [meta.links.reddit],
                "message_board": [],
                "announcement": [],
                "chat": [],
                "explorer": [],
                "source_code": [meta.links.source_code],
            },
            "logo": f"https://s2.coinmarketcap.com/static/img/coins/64x64/{a.cmc_id}.png",
            "id": a.cmc_id,
            "name": meta.name,
            "symbol": a.symbol,
            "slug": a.slug,
            "description": meta.description,
            "date_added": a.date_added,
            "date_launched": a.date_added,
            "tags": [],
            "platform": None,
            "category": "token" if a.symbol == "PEPE" else "coin",
        }
        data[_key(by, a)] = [row] if by == "symbol" else row
    return json_response({"status": status_object(), "data": data})


def fear_greed_value(sim: Simulator, lag: AggregatorProfile = LAG) -> int:
    """The index follows the market: 50 plus 5 points per percent of BTC's change (as seen
    ``lag`` behind), 1..100."""
    return max(1, min(100, round(50 + change_24h_pct(sim, BY_SYMBOL["BTC"], lag) * 5)))


def cmc_classification(value: int) -> str:
    if value < 20:
        return "Extreme Fear"
    if value < 40:
        return "Fear"
    if value < 60:
        return "Neutral"
    if value < 80:
        return "Greed"
    return "Extreme Greed"


async def fear_and_greed_latest(request: web.Request) -> web.Response:
    if (resp := await gate(request)) is not None:
        return resp
    value = fear_greed_value(sim_of(request))
    now = datetime.now(UTC).replace(minute=(datetime.now(UTC).minute // 15) * 15, second=0)
    return json_response(
        {
            "status": status_object(),
            "data": {
                "value": value,
                "value_classification": cmc_classification(value),
                "update_time": iso_ms(now),
            },
        }
    )


def setup(app: web.Application, sim: Simulator) -> None:
    app.router.add_get(f"{PREFIX}/v1/cryptocurrency/listings/latest", listings_latest)
    app.router.add_get(f"{PREFIX}/v2/cryptocurrency/quotes/latest", quotes_latest)
    app.router.add_get(f"{PREFIX}/v2/cryptocurrency/info", info)
    app.router.add_get(f"{PREFIX}/v3/fear-and-greed/latest", fear_and_greed_latest)
