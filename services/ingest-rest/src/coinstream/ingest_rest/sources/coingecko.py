"""CoinGecko API v3: simple/price, coins/markets (top N, paged), coins/{id} for the tracked
assets, exchanges, global, and ping as the readiness probe.

Plans: ``public`` (keyless) and ``demo`` use ``https://api.coingecko.com/api/v3`` and the
``x-cg-demo-api-key`` header; ``pro`` uses ``https://pro-api.coingecko.com/api/v3`` and
``x-cg-pro-api-key``. An explicit ``base_url`` wins over the plan's default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from coinstream.ingest_rest.source import (
    Endpoint,
    Outcome,
    Request,
    RestSource,
    SourceSettings,
    expect_dict,
    expect_list,
)

PUBLIC_BASE_URL = "https://api.coingecko.com/api/v3"
PRO_BASE_URL = "https://pro-api.coingecko.com/api/v3"
AUTH_CODES = {401, 403, 10002, 10005, 10010, 10011}


class CoinGeckoSettings(SourceSettings):
    """``INGEST_REST_COINGECKO__*``."""

    plan: Literal["public", "demo", "pro"] = "public"
    base_url: str = ""
    ids: list[str] = Field(default_factory=lambda: ["bitcoin", "ethereum", "solana", "pepe"])
    vs_currencies: list[str] = Field(default_factory=lambda: ["usd"])
    markets_top_n: int = Field(100, gt=0, description="How many coins /coins/markets covers")
    markets_per_page: int = Field(100, gt=0, le=250)
    exchanges_per_page: int = Field(100, gt=0, le=250)


def _simple_price(s: CoinGeckoSettings) -> list[Request]:
    params = {
        "ids": ",".join(s.ids),
        "vs_currencies": ",".join(s.vs_currencies),
        "include_market_cap": "true",
        "include_24hr_vol": "true",
        "include_24hr_change": "true",
        "include_last_updated_at": "true",
    }
    return [Request("simple_price", "/simple/price", params)]


def _markets(s: CoinGeckoSettings) -> list[Request]:
    per_page = min(s.markets_per_page, s.markets_top_n)
    params = {
        "vs_currency": s.vs_currencies[0],
        "order": "market_cap_desc",
        "per_page": str(per_page),
        "page": "1",
        "sparkline": "false",
        "price_change_percentage": "1h,24h,7d",
    }
    return [Request("coins_markets", "/coins/markets", params)]


def _markets_next(request: Request, body: Any, s: CoinGeckoSettings) -> Request | None:
    per_page = int(request.params["per_page"])
    pages = math.ceil(s.markets_top_n / per_page)
    if not isinstance(body, list) or len(body) < per_page or request.page >= pages:
        return None
    return request.next(page=str(request.page + 1))


def _coins(s: CoinGeckoSettings) -> list[Request]:
    params = {
        "localization": "false",
        "tickers": "false",
        "market_data": "true",
        "community_data": "true",
        "developer_data": "true",
        "sparkline": "false",
    }
    return [Request("coins_id", f"/coins/{coin_id}", params) for coin_id in s.ids]


def _exchanges(s: CoinGeckoSettings) -> list[Request]:
    return [
        Request("exchanges", "/exchanges", {"per_page": str(s.exchanges_per_page), "page": "1"})
    ]


class CoinGecko(RestSource):
    name: ClassVar[str] = "coingecko"
    settings_model: ClassVar[type[SourceSettings]] = CoinGeckoSettings
    secret_params: ClassVar[frozenset[str]] = frozenset({"x_cg_demo_api_key", "x_cg_pro_api_key"})

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(
                "ping",
                "/ping",
                60.0,
                lambda s: [Request("ping", "/ping")],
                expect_dict("gecko_says"),
                publish=False,
            ),
            Endpoint("simple_price", "/simple/price", 60.0, _simple_price, expect_dict()),
            Endpoint(
                "coins_markets", "/coins/markets", 300.0, _markets, expect_list, _markets_next
            ),
            Endpoint("coins_id", "/coins/{id}", 3600.0, _coins, expect_dict("id")),
            Endpoint("exchanges", "/exchanges", 7200.0, _exchanges, expect_list),
            Endpoint(
                "global",
                "/global",
                300.0,
                lambda s: [Request("global", "/global")],
                expect_dict("data"),
            ),
        ]

    def base_url(self, settings: Any) -> str:
        if settings.base_url:
            return str(settings.base_url).rstrip("/")
        return PRO_BASE_URL if settings.plan == "pro" else PUBLIC_BASE_URL

    def auth_headers(self, settings: Any) -> dict[str, str]:
        if settings.api_key is None:
            return {}  # keyless public API; a key with plan "public" is sent as a demo key
        header = "x-cg-pro-api-key" if settings.plan == "pro" else "x-cg-demo-api-key"
        return {header: settings.api_key.get_secret_value()}

    def provider_error(self, status: int, body: Any, headers: Mapping[str, str]) -> Outcome | None:
        """``{"status": {"error_code": ..., "error_message": ...}}`` bodies (also 10002 etc.)."""
        if not isinstance(body, dict) or not isinstance(body.get("status"), dict):
            return None
        if "error_code" not in body["status"]:
            return None
        code = body["status"].get("error_code")
        message = str(body["status"].get("error_message") or "")[:200]
        reason = f"CoinGecko error {code}: {message}"
        if code == 429 or status == 429:
            return Outcome("rate_limited", reason)
        if code in AUTH_CODES or status in (401, 402, 403):
            return Outcome(
                "auth",
                reason + " (check INGEST_REST_COINGECKO__PLAN and INGEST_REST_COINGECKO__API_KEY)",
            )
        if isinstance(code, int) and (code >= 500 or code == 408):
            return Outcome("transient", reason)
        return Outcome("rejected", reason)


SOURCE = CoinGecko()
