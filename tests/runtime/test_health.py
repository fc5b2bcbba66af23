"""Health server answers liveness, readiness (with failing checks) and metrics over HTTP."""

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from coinstream.runtime import HealthServer, HttpSettings


async def test_health_ready_and_metrics() -> None:
    registry = CollectorRegistry()
    Counter("coinstream_test_things", "things", registry=registry).inc(3)
    ready = {"ok": False}
    async with HealthServer(HttpSettings(host="127.0.0.1", port=0), registry) as server:
        server.add_check("broker", lambda: (ready["ok"], "connected" if ready["ok"] else "down"))
        base = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 503
                assert (await r.json())["checks"]["broker"] == "FAIL: down"
            ready["ok"] = True
            async with http.get(f"{base}/readyz") as r:
                assert r.status == 200
            async with http.get(f"{base}/metrics") as r:
                assert "coinstream_test_things_total 3.0" in await r.text()
