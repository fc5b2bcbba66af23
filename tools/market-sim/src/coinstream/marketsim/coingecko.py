"""CoinGecko API v3 (``/coingecko/api/v3/...``): ping, simple/price, coins/markets,
coins/{id}, exchanges, global, with the documented shapes (JSON numbers, Unix-second
``last_updated_at``, ISO-8601 ``...Z`` timestamps, ``/global`` wrapped in ``data``).
Prices are the fair value ``LAG`` behind (CoinGecko aggregates and refreshes slowly); names,
descriptions and links come from ``sim.assets`` (changed with ``POST /_sim/assets/{asset}``).

Keys: both ``x-cg-demo-api-key`` and ``x-cg-pro-api-key`` are accepted. When
``sim.faults["coingecko.api_key"]`` is set, a request without a key gets 401 with error 10002
and a wrong key gets 401 with error 10002 "Invalid API Key" (body shape UNCONFIRMED upstream).
A 429 fault answers with the documented JSON body or, with ``"format": "html"``, a Cloudflare
HTML page; both carry ``Retry-After`` when the fault has ``retry_after``.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from coinstream.marketsim.app import Simulator
from coinstream.marketsim.assets import ASSETS, BY_CG_ID, Asset
from coinstream.marketsim.fairvalue import AggregatorProfile
from coinstream.marketsim.rest import (
    CLOUDFLARE_429,
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

PROVIDER = "coingecko"
PREFIX = "/coingecko/api/v3"
LAG = AggregatorProfile(delay_s=4.0, window_s=6.0)
"""CoinGecko quotes the fair value of 4 to 10 seconds ago (averaged)."""

EXCHANGES: tuple[dict[str, Any], ...] = (
    {
        "id": "binance",
        "name": "Binance",
        "year_established": 2017,
        "country": "Cayman Islands",
        "url": "https://www.binance.com/",
        "trust_score": 10,
        "trust_score_rank": 1,
        "share": 0.30,
    },
    {
        "id": "gdax",
        "name": "Coinbase Exchange",
        "year_established": 2012,
        "country": "United States",
        "url": "https://www.coinbase.com/",
        "trust_score": 10,
        "trust_score_rank": 2,
        "share": 0.08,
    },
    {
        "id": "kraken",
        "name": "Kraken",
        "year_established": 2011,
        "country": "United States",
        "url": "https://r.kraken.com/",
        "trust_score": 10,
        "trust_score_rank": 3,
        "share": 0.05,
    },
)


def _error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response(
        {"status": {"error_code": code, "error_message": message}}, status=status, headers=headers
    )


def _rate_limit(fault: dict[str, Any]) -> web.Response:
    headers = retry_headers(fault)
    if fault.get("format") == "html":
        return web.Response(
            status=429, text=CLOUDFLARE_429, content_type="text/html", headers=headers
        )
    return _error(
        429,
        429,
        "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing "
        "to subscribe to our API plans for higher rate limits.",
        headers,
    )


def _status(fault: dict[str, Any]) -> web.Response:
    status = int(fault.get("status", 500))
    return _error(status, status, fault.get("message", "Internal Server Error"))


async def _gate(request: web.Request) -> web.Response | None:
    """Record the request, check the key and apply faults; a response means answer with it."""
    sim = sim_of(request)
    record_request(sim, PROVIDER, request)
    expected = sim.faults.get(f"{PROVIDER}.api_key")
    if expected:
        given = request.headers.get("x-cg-pro-api-key") or request.headers.get("x-cg-demo-api-key")
        given = (
            given or request.query.get("x_cg_pro_api_key") or request.query.get("x_cg_demo_api_key")
        )
        if not given:
            return _error(401, 10002, "API Key Missing")
        if given != expected:
            return _error(401, 10002, "Invalid API Key")
    return await apply_fault(sim, PROVIDER, request, rate_limit=_rate_limit, status=_status)


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    return default if value is None else value.lower() == "true"


async def ping(request: web.Request) -> web.Response:
    return await _gate(request) or json_response({"gecko_says": "(V3) To the Moon!"})


def _simple_entry(
    sim: Simulator, asset: Asset, vs: list[str], request: web.Request
) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    for cur in vs:
        rate = float(price(sim, BY_CG_ID["bitcoin"], LAG)) if cur == "btc" else 1.0
        entry[cur] = float(price(sim, asset, LAG)) / rate
        if _flag(request, "include_market_cap"):
            entry[f"{cur}_market_cap"] = market_cap(sim, asset, LAG) / rate
        if _flag(request, "include_24hr_vol"):
            entry[f"{cur}_24h_vol"] = volume_24h(sim, asset, LAG) / rate
        if _flag(request, "include_24hr_change"):
            entry[f"{cur}_24h_change"] = change_24h_pct(sim, asset, LAG)
    if _flag(request, "include_last_updated_at"):
        entry["last_updated_at"] = int(time.time())
    return entry


async def simple_price(request: web.Request) -> web.Response:
    if (resp := await _gate(request)) is not None:
        return resp
    sim = sim_of(request)
    if "vs_currencies" not in request.query:
        return _error(400, 400, "Missing parameter vs_currencies")
    ids = [i for i in request.query.get("ids", "").split(",") if i]
    vs = [v.lower() for v in request.query["vs_currencies"].split(",") if v]
    body = {i: _simple_entry(sim, BY_CG_ID[i], vs, request) for i in ids if i in BY_CG_ID}
    return json_response(body)


def _market_row(sim: Simulator, asset: Asset) -> dict[str, Any]:
    start = float(sim.market.opening_value(asset.symbol))
    now = float(price(sim, asset, LAG))
    cap = market_cap(sim, asset, LAG)
    change = change_24h_pct(sim, asset, LAG)
    return {
        "id": asset.cg_id,
        "symbol": asset.symbol.lower(),
        "name": sim.assets.metadata(asset).name,
        "image": f"https://assets.coingecko.com/coins/images/{asset.cmc_id}/large/{asset.cg_id}.png",
        "current_price": now,
        "market_cap": cap,
        "market_cap_rank": asset.rank,
        "fully_diluted_valuation": (now * asset.max_supply) if asset.max_supply else None,
        "total_volume": volume_24h(sim, asset, LAG),
        "high_24h": max(now, start),
        "low_24h": min(now, start),
        "price_change_24h": now - start,
        "price_change_percentage_24h": change,
        "market_cap_change_24h": cap - start * asset.circulating,
        "market_cap_change_percentage_24h": change,
        "circulating_supply": asset.circulating,
        "total_supply": asset.max_supply,
        "max_supply": asset.max_supply,
        "ath": max(now, start) * 1.1,
        "ath_change_percentage": -9.09,
        "ath_date": "2024-03-14T07:10:36.635Z",
        "atl": start / 100,
        "atl_change_percentage": 9900.0,
        "atl_date": "2013-07-06T00:00:00.000Z",
        "roi": None,
        "last_updated": iso_ms(),
    }


async def coins_markets(request: web.Request) -> web.Response:
    if (resp := await _gate(request)) is not None:
        return resp
    sim = sim_of(request)
    if "vs_currency" not in request.query:
        return _error(400, 400, "Missing parameter vs_currency")
    per_page = min(250, max(1, int(request.query.get("per_page", "100"))))
    page = max(1, int(request.query.get("page", "1")))
    ranked = sorted(ASSETS, key=lambda a: -market_cap(sim, a, LAG))
    ids = [i for i in request.query.get("ids", "").split(",") if i]
    if ids:
        ranked = [a for a in ranked if a.cg_id in ids]
    rows = ranked[(page - 1) * per_page : page * per_page]
    return json_response([_market_row(sim, a) for a in rows])


async def coin(request: web.Request) -> web.Response:
    if (resp := await _gate(request)) is not None:
        return resp
    sim = sim_of(request)
    asset = BY_CG_ID.get(request.match_info["id"])
    if asset is None:
        return _error(404, 404, "coin not found")
    now = float(price(sim, asset, LAG))
    change = change_24h_pct(sim, asset, LAG)
    meta = sim.assets.metadata(asset)
    body: dict[str, Any] = {
        "id": asset.cg_id,
        "symbol": asset.symbol.lower(),
        "name": meta.name,
        "web_slug": asset.cg_id,
        "asset_platform_id": "ethereum" if asset.symbol == "PEPE" else None,
        "genesis_date": asset.date_added[:10],
        "sentiment_votes_up_percentage": round(min(95.0, max(5.0, 60 + change * 5)), 2),
        "watchlist_portfolio_users": 1_000_000 // asset.rank,
        "market_cap_rank": asset.rank,
        "description": {"en": meta.description},
        "links": {
            "homepage": [meta.links.website],
            "subreddit_url": meta.links.reddit,
            "repos_url": {"github": [meta.links.source_code]},
        },
        "last_updated": iso_ms(),
    }
    body["sentiment_votes_down_percentage"] = round(100 - body["sentiment_votes_up_percentage"], 2)
    if _flag(request, "market_data", True):
        body["market_data"] = {
            "current_price": {
                "usd": now,
                "btc": now / float(price(sim, BY_CG_ID["bitcoin"], LAG)),
            },
            "total_value_locked": None,
            "roi": None,
            "market_cap": {"usd": market_cap(sim, asset, LAG)},
            "total_volume": {"usd": volume_24h(sim, asset, LAG)},
            "price_change_percentage_24h": change,
            "circulating_supply": asset.circulating,
            "last_updated": iso_ms(),
        }
    if _flag(request, "community_data", True):
        body["community_data"] = {
            "facebook_likes": None,
            "twitter_followers": 6_585_597 // asset.rank,
            "reddit_average_posts_48h": 0,
            "reddit_average_comments_48h": 0,
            "reddit_subscribers": 0,
            "reddit_accounts_active_48h": 0,
            "telegram_channel_user_count": None,
        }
    if _flag(request, "developer_data", True):
        body["developer_data"] = {
            "forks": 36426 // asset.rank,
            "stars": 73168 // asset.rank,
            "subscribers": 3967,
            "total_issues": 7743,
            "closed_issues": 7380,
            "pull_requests_merged": 11215,
            "pull_request_contributors": 846,
            "code_additions_deletions_4_weeks": {"additions": 1570, "deletions": -1948},
            "commit_count_4_weeks": 108,
            "last_4_weeks_commit_activity_series": [],
        }
    if _flag(request, "tickers", True):
        body["tickers"] = []
    body["status_updates"] = []
    return json_response(body)


async def exchanges(request: web.Request) -> web.Response:
    if (resp := await _gate(request)) is not None:
        return resp
    sim = sim_of(request)
    per_page = min(250, max(1, int(request.query.get("per_page", "100"))))
    page = max(1, int(request.query.get("page", "1")))
    total_btc = sum(market_cap(sim, a, LAG) * 0.03 for a in ASSETS) / float(
        price(sim, BY_CG_ID["bitcoin"], LAG)
    )
    rows = []
    for ex in EXCHANGES[(page - 1) * per_page : page * per_page]:
        row = {k: v for k, v in ex.items() if k != "share"}
        row.update(
            {
                "description": "",
                "image": f"https://assets.coingecko.com/markets/images/{ex['id']}.png",
                "has_trading_incentive": False,
                "trade_volume_24h_btc": total_btc * ex["share"],
                "trade_volume_24h_btc_normalized": total_btc * ex["share"] * 0.9,
            }
        )
        rows.append(row)
    return json_response(rows)


async def global_(request: web.Request) -> web.Response:
    if (resp := await _gate(request)) is not None:
        return resp
    sim = sim_of(request)
    caps = {a.symbol.lower(): market_cap(sim, a, LAG) for a in ASSETS}
    total = sum(caps.values()) / 0.85  # the tracked assets are ~85% of the market
    btc = float(price(sim, BY_CG_ID["bitcoin"], LAG))
    return json_response(
        {
            "data": {
                "active_cryptocurrencies": 13690,
                "upcoming_icos": 0,
                "ongoing_icos": 49,
                "ended_icos": 3376,
                "markets": 1046,
                "total_market_cap": {"usd": total, "btc": total / btc},
                "total_volume": {"usd": total * 0.03, "btc": total * 0.03 / btc},
                "market_cap_percentage": {k: v / total * 100 for k, v in caps.items()},
                "market_cap_change_percentage_24h_usd": change_24h_pct(
                    sim, BY_CG_ID["bitcoin"], LAG
                ),
                "updated_at": int(time.time()),
            }
        }
    )


def setup(app: web.Application, sim: Simulator) -> None:
    app.router.add_get(f"{PREFIX}/ping", ping)
    app.router.add_get(f"{PREFIX}/simple/price", simple_price)
    app.router.add_get(f"{PREFIX}/coins/markets", coins_markets)
    app.router.add_get(f"{PREFIX}/coins/{{id}}", coin)
    app.router.add_get(f"{PREFIX}/exchanges", exchanges)
    app.router.add_get(f"{PREFIX}/global", global_)
