"""alternative.me Fear & Greed index (``/feargreed/fng/``).

Every value is a string; ``timestamp`` is Unix seconds at 00:00 UTC; the list is newest first
and only the newest entry has ``time_until_update``. ``limit`` (default 1; 0 = 30 days here)
selects how many days. The newest value follows the market ``LAG`` behind (see
``coinmarketcap.fear_greed_value``); older days drift deterministically from it. Faults as in
``rest.py`` under provider name ``feargreed``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from coinstream.marketsim.app import Simulator
from coinstream.marketsim.coinmarketcap import fear_greed_value
from coinstream.marketsim.fairvalue import AggregatorProfile
from coinstream.marketsim.rest import (
    apply_fault,
    json_response,
    record_request,
    retry_headers,
    sim_of,
)

PROVIDER = "feargreed"
LAG = AggregatorProfile(delay_s=10.0, window_s=10.0)
"""The index reflects BTC's fair value of 10 to 20 seconds ago."""


def classification(value: int) -> str:
    """alternative.me's bands (they differ from CoinMarketCap's)."""
    if value <= 24:
        return "Extreme Fear"
    if value <= 46:
        return "Fear"
    if value <= 54:
        return "Neutral"
    if value <= 75:
        return "Greed"
    return "Extreme Greed"


def _error(fault: dict[str, Any]) -> web.Response:
    status = int(fault.get("status", 429 if fault.get("kind") == "rate_limit" else 500))
    return json_response(
        {"name": "Fear and Greed Index", "data": [], "metadata": {"error": "Error"}},
        status=status,
        headers=retry_headers(fault),
    )


def entries(sim: Simulator, limit: int, now: datetime | None = None) -> list[dict[str, str]]:
    now = now or datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    latest = fear_greed_value(sim, LAG)
    rows = []
    for day in range(limit):
        value = max(0, min(100, latest - 3 * day + (day % 3)))
        ts = midnight - timedelta(days=day)
        row = {
            "value": str(value),
            "value_classification": classification(value),
            "timestamp": str(int(ts.timestamp())),
        }
        if day == 0:
            row["time_until_update"] = str(
                int((midnight + timedelta(days=1) - now).total_seconds())
            )
        rows.append(row)
    return rows


async def fng(request: web.Request) -> web.Response:
    sim = sim_of(request)
    record_request(sim, PROVIDER, request)
    fault = await apply_fault(sim, PROVIDER, request, rate_limit=_error, status=_error)
    if fault is not None:
        return fault
    try:
        limit = int(request.query.get("limit", "1"))
    except ValueError:
        limit = 1
    limit = 30 if limit <= 0 else min(limit, 30)
    return json_response(
        {"name": "Fear and Greed Index", "data": entries(sim, limit), "metadata": {"error": None}}
    )


def setup(app: web.Application, sim: Simulator) -> None:
    app.router.add_get("/feargreed/fng/", fng)
    app.router.add_get("/feargreed/fng", fng)
