"""Shared REST fault scripting: faults match by path, count down and can be set over HTTP."""

import aiohttp

from coinstream.marketsim.market import Market
from coinstream.marketsim.rest import take_fault
from coinstream.marketsim.server import SimServer


async def test_faults_match_by_path_and_count_down() -> None:
    async with SimServer(Market(rate=0, seed=1), run_market=False) as server:
        faults = [{"kind": "status", "status": 500, "count": 2, "path": "/global"}]
        server.sim.faults["coingecko.faults"] = faults
        assert take_fault(server.sim, "coingecko", "/coingecko/api/v3/ping") is None
        assert take_fault(server.sim, "coingecko", "/coingecko/api/v3/global") is not None
        assert take_fault(server.sim, "coingecko", "/coingecko/api/v3/global") is not None
        assert take_fault(server.sim, "coingecko", "/coingecko/api/v3/global") is None
        server.sim.faults["coingecko.faults"] = [{"kind": "slow", "count": -1}]
        for _ in range(3):
            assert take_fault(server.sim, "coingecko", "/x") == {"kind": "slow", "count": -1}


async def test_faults_can_be_scripted_over_http() -> None:
    async with SimServer(Market(rate=0, seed=1), run_market=False) as server:
        async with aiohttp.ClientSession() as http:
            fault = {"name": "feargreed.faults", "value": [{"kind": "status", "status": 502}]}
            async with http.post(f"{server.base_url}/_sim/faults", json=fault) as r:
                assert r.status == 200
            async with http.get(f"{server.base_url}/feargreed/fng/") as r:
                assert r.status == 502
            async with http.get(f"{server.base_url}/feargreed/fng/") as r:
                assert r.status == 200
            async with http.get(f"{server.base_url}/_sim/recordings/feargreed.requests") as r:
                assert [x["path"] for x in await r.json()] == ["/feargreed/fng/"] * 2
