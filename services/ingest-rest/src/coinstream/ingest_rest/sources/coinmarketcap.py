"""CoinMarketCap Pro API: listings latest, quotes latest, cryptocurrency info, fear-and-greed.

The key travels in ``X-CMC_PRO_API_KEY``. ``status.error_code`` is checked on every response,
HTTP 200 included: 1001-1007 are credential/plan errors (the source stops), 1008 and 1011 are
per-minute limits (wait for ``Retry-After`` or the one-minute reset), 1009 waits for the next
UTC day and 1010 for the next UTC month.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import Field

from coinstream.ingest_rest.source import (
    Endpoint,
    Outcome,
    Request,
    RestSource,
    SourceSettings,
    expect_dict,
)

BASE_URL = "https://pro-api.coinmarketcap.com"
AUTH_CODES = range(1001, 1008)


def seconds_until_reset(code: int, now: datetime | None = None) -> float:
    """The documented reset of a CMC limit error: a minute, the next UTC day or month."""
    now = now or datetime.now(UTC)
    if code == 1009:
        tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return (tomorrow - now).total_seconds()
    if code == 1010:
        first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = (first + timedelta(days=32)).replace(day=1)
        return (nxt - now).total_seconds()
    return 60.0


def cmc_error(status: int, body: Any, source: str) -> Outcome | None:
    """Classify a CMC ``status`` object with a non-zero ``error_code`` (None if success)."""
    if not isinstance(body, dict) or not isinstance(body.get("status"), dict):
        return None
    code = body["status"].get("error_code", 0)
    try:
        code = int(code)
    except (TypeError, ValueError):
        return Outcome("invalid", f"status.error_code is not a number: {code!r}")
    if code == 0:
        return None
    message = str(body["status"].get("error_message") or "")[:200]
    reason = f"CoinMarketCap error {code} (HTTP {status}): {message}"
    if code in AUTH_CODES:
        env = f"INGEST_REST_{source.upper().replace('-', '_')}__API_KEY"
        return Outcome("auth", f"{reason} (check the plan and {env})")
    if 1008 <= code <= 1011:
        return Outcome(
            "rate_limited", reason, None if code in (1008, 1011) else seconds_until_reset(code)
        )
    if code >= 500:
        return Outcome("transient", reason)
    return Outcome("rejected", reason)


class CoinMarketCapSettings(SourceSettings):
    """``INGEST_REST_COINMARKETCAP__*``."""

    base_url: str = BASE_URL
    credits_per_day: int | None = Field(333, gt=0, description="Basic plan: 10,000 a month")
    ids: list[int] = Field(default_factory=lambda: [1, 1027, 5426, 24478])
    convert: list[str] = Field(default_factory=lambda: ["USD"])
    listings_limit: int = Field(100, gt=0, le=5000)


def _credits(items: int, per: int, converts: int) -> int:
    return max(1, math.ceil(items / per)) * max(1, converts)


def _listings(s: CoinMarketCapSettings) -> list[Request]:
    params = {"start": "1", "limit": str(s.listings_limit), "convert": ",".join(s.convert)}
    cost = _credits(s.listings_limit, 200, len(s.convert))
    return [Request("listings_latest", "/v1/cryptocurrency/listings/latest", params, cost)]


def _quotes(s: CoinMarketCapSettings) -> list[Request]:
    params = {"id": ",".join(map(str, s.ids)), "convert": ",".join(s.convert)}
    cost = _credits(len(s.ids), 100, len(s.convert))
    return [Request("quotes_latest", "/v2/cryptocurrency/quotes/latest", params, cost)]


def _info(s: CoinMarketCapSettings) -> list[Request]:
    params = {"id": ",".join(map(str, s.ids))}
    return [Request("info", "/v2/cryptocurrency/info", params, _credits(len(s.ids), 100, 1))]


def _fear_greed(s: CoinMarketCapSettings) -> list[Request]:
    return [Request("fear_and_greed_latest", "/v3/fear-and-greed/latest")]


class CoinMarketCap(RestSource):
    name: ClassVar[str] = "coinmarketcap"
    settings_model: ClassVar[type[SourceSettings]] = CoinMarketCapSettings
    key_header: ClassVar[str | None] = "X-CMC_PRO_API_KEY"
    secret_params: ClassVar[frozenset[str]] = frozenset({"CMC_PRO_API_KEY"})

    def endpoints(self) -> list[Endpoint]:
        envelope = expect_dict("status", "data")
        return [
            Endpoint(
                "listings_latest", "/v1/cryptocurrency/listings/latest", 3600.0, _listings, envelope
            ),
            Endpoint("quotes_latest", "/v2/cryptocurrency/quotes/latest", 600.0, _quotes, envelope),
            Endpoint("info", "/v2/cryptocurrency/info", 86_400.0, _info, envelope),
            Endpoint(
                "fear_and_greed_latest", "/v3/fear-and-greed/latest", 900.0, _fear_greed, envelope
            ),
        ]

    def provider_error(self, status: int, body: Any, headers: Mapping[str, str]) -> Outcome | None:
        return cmc_error(status, body, self.name)


SOURCE = CoinMarketCap()
