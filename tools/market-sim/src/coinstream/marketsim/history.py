"""What the venues' REST trade-history endpoints share: the market's trade log and faults.

Each venue module renders the log in its own documented shape and at its own prices (its
``VenueView``, the same rendering its streams use); this module decides which trades are
available and which fault (if any) answers first:

- ``sim.faults["<venue>.faults"]``: the REST fault list of ``rest.py`` (``rate_limit`` with
  ``retry_after``, ``status`` 5xx, ``slow``, ``malformed``), matched against the path;
- ``sim.faults["<venue>.history_keep"] = N``: only the newest N trades per instrument are
  still available (older ones answer as the venue does when history does not reach that far).

Every request is recorded under ``<venue>.requests``.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from coinstream.marketsim.app import Simulator
from coinstream.marketsim.market import Trade
from coinstream.marketsim.rest import apply_fault, record_request, retry_headers


def available(sim: Simulator, venue: str, symbol: str) -> Sequence[Trade]:
    """The tape's trades of ``symbol`` still available at ``venue``, oldest first (render
    each with ``sim.market.venue(venue).trade``)."""
    trades = sim.market.history(symbol)
    keep = sim.faults.get(f"{venue}.history_keep")
    if keep is not None:
        keep = int(keep)
        return list(trades)[-keep:] if keep > 0 else []
    return trades


async def answer_fault(
    sim: Simulator, venue: str, request: web.Request, error_body: dict[str, object]
) -> web.Response | None:
    """Record the request; a scripted fault's response, or None to answer normally."""
    record_request(sim, venue, request)

    def rate_limited(fault: dict[str, object]) -> web.Response:
        return web.json_response(error_body, status=429, headers=retry_headers(fault))

    def status(fault: dict[str, object]) -> web.Response:
        code = int(str(fault.get("status", 503)))
        return web.json_response(error_body, status=code)

    return await apply_fault(sim, venue, request, rate_limit=rate_limited, status=status)
