"""Each source polled against the simulator: the right requests, envelopes on the real broker,
and every fault handled (429 pauses the provider, malformed bodies dead-lettered, bad keys stop
only that source, 5xx and timeouts retried, the circuit opens and closes, budgets hold)."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest
from pydantic import SecretStr

from coinstream.devstack.kafkatools import read_topic
from coinstream.ingest_rest.poller import SourceRunner
from coinstream.ingest_rest.publisher import Publisher
from coinstream.ingest_rest.registry import load_sources
from coinstream.ingest_rest.source import EndpointSettings, RestSource
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaSettings
from coinstream.schemas import DeadLetter, FeedStatusEvent, Topics, decode_envelope

from .helpers import SIM_PATHS, fast, run_until

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]

SOURCES = {s.name: s for s in load_sources()}


def runner_for(
    sim: SimServer,
    publisher: Publisher,
    name: str,
    only: list[str] | None = None,
    **overrides: Any,
) -> SourceRunner:
    source: RestSource = SOURCES[name]
    values = fast(**overrides)
    values.setdefault("base_url", sim.base_url + SIM_PATHS[name])
    if only is not None:
        values["endpoints"] = {
            e.key: EndpointSettings(enabled=e.key in only) for e in source.endpoints()
        }
    return SourceRunner(source, source.settings_model(**values), publisher)


def requests(sim: SimServer, provider: str) -> list[dict[str, Any]]:
    return list(sim.sim.recordings.get(f"{provider}.requests", []))


async def feed_status(
    settings: KafkaSettings, topics: Topics, status: str, n: int = 1
) -> list[Any]:
    def match(recs: list[Any]) -> bool:
        return len([r for r in recs if json.loads(r.value).get("status") == status]) >= n

    recs = await read_topic(settings, topics.feed_status, until=match, timeout=10)
    events = [FeedStatusEvent.model_validate_json(r.value) for r in recs]
    return [e for e in events if e.status == status]


async def test_coingecko_requests_and_envelopes(
    sim: SimServer, publisher: Publisher, kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Paths, params and the demo key header; every endpoint published verbatim; ping not."""
    runner = runner_for(
        sim,
        publisher,
        "coingecko",
        plan="demo",
        api_key=SecretStr("cg-demo-key"),
        markets_per_page=2,
        markets_top_n=4,
    )
    sim.sim.faults["coingecko.api_key"] = "cg-demo-key"
    # ping, simple/price, 2 markets pages, 4 coins, exchanges, global
    assert await run_until(runner, lambda: len(requests(sim, "coingecko")) >= 10)
    seen = requests(sim, "coingecko")
    paths = sorted(r["path"].removeprefix("/coingecko/api/v3") for r in seen)
    assert paths == sorted(
        ["/ping", "/simple/price", "/coins/markets", "/coins/markets", "/exchanges", "/global"]
        + [f"/coins/{i}" for i in ("bitcoin", "ethereum", "solana", "pepe")]
    )
    assert all(r["headers"].get("x-cg-demo-api-key") == "cg-demo-key" for r in seen)
    assert all("x-cg-pro-api-key" not in r["headers"] for r in seen)
    markets = [r["query"] for r in seen if r["path"].endswith("/coins/markets")]
    assert sorted(q["page"] for q in markets) == ["1", "2"]
    assert all(q["vs_currency"] == "usd" and q["per_page"] == "2" for q in markets)

    recs = await read_topic(kafka_settings, topics.raw("coingecko"), min_records=9, timeout=10)
    envelopes = [decode_envelope(r.value) for r in recs]
    assert sorted(e.channel for e in envelopes) == sorted(
        ["/simple/price", "/coins/markets", "/coins/markets", "/exchanges", "/global"]
        + ["/coins/{id}"] * 4
    )
    for rec, env in zip(recs, envelopes, strict=True):
        assert rec.key == f"coingecko:{env.channel}".encode()
        assert env.source == "coingecko" and env.request is not None and env.request.status == 200
        assert "?" not in env.request.url and env.request.url.startswith(sim.base_url)
        assert b"cg-demo-key" not in rec.value
        json.loads(env.payload)  # verbatim JSON text
    price = next(e for e in envelopes if e.channel == "/simple/price")
    assert (
        price.request is not None and price.request.params["ids"] == "bitcoin,ethereum,solana,pepe"
    )
    body = json.loads(price.payload)
    assert body["bitcoin"]["usd"] == float(sim.sim.market.price("BTC-USDT"))
    coin_urls = {e.request.url for e in envelopes if e.channel == "/coins/{id}" and e.request}
    assert f"{sim.base_url}/coingecko/api/v3/coins/pepe" in coin_urls
    assert runner.readiness() == (True, "ok")


async def test_coingecko_pro_plan_sends_the_pro_header(
    sim: SimServer, publisher: Publisher
) -> None:
    runner = runner_for(
        sim, publisher, "coingecko", only=["ping"], plan="pro", api_key=SecretStr("cg-pro")
    )
    assert await run_until(runner, lambda: len(requests(sim, "coingecko")) >= 1)
    assert requests(sim, "coingecko")[0]["headers"] == {
        "x-cg-pro-api-key": "cg-pro",
        "Accept": "application/json",
    }


async def test_coinmarketcap_requests_and_envelopes(
    sim: SimServer, publisher: Publisher, kafka_settings: KafkaSettings, topics: Topics
) -> None:
    sim.sim.faults["coinmarketcap.api_key"] = "cmc-key"
    runner = runner_for(sim, publisher, "coinmarketcap", api_key=SecretStr("cmc-key"))
    assert await run_until(runner, lambda: len(requests(sim, "coinmarketcap")) >= 4)
    seen = {r["path"].removeprefix("/cmc"): r for r in requests(sim, "coinmarketcap")}
    assert set(seen) == {
        "/v1/cryptocurrency/listings/latest",
        "/v2/cryptocurrency/quotes/latest",
        "/v2/cryptocurrency/info",
        "/v3/fear-and-greed/latest",
    }
    assert all(r["headers"]["X-CMC_PRO_API_KEY"] == "cmc-key" for r in seen.values())
    assert seen["/v2/cryptocurrency/quotes/latest"]["query"] == {
        "id": "1,1027,5426,24478",
        "convert": "USD",
    }
    assert seen["/v1/cryptocurrency/listings/latest"]["query"]["limit"] == "100"
    recs = await read_topic(kafka_settings, topics.raw("coinmarketcap"), min_records=4, timeout=10)
    channels = {decode_envelope(r.value).channel for r in recs}
    assert channels == set(seen)
    assert not any(b"cmc-key" in r.value for r in recs)
    assert runner.budget.remaining(asyncio.get_running_loop().time())["credits"] == 333 - 4


async def test_cmc_dex_pages_with_scroll_id_and_publishes_each_page(
    sim: SimServer, publisher: Publisher, kafka_settings: KafkaSettings, topics: Topics
) -> None:
    runner = runner_for(sim, publisher, "cmc-dex", api_key=SecretStr("dex-key"), spot_pairs_limit=2)
    # ethereum: 3 pairs -> pages of 2 and 1; solana: 1 pair; quotes: 2 networks
    assert await run_until(runner, lambda: len(requests(sim, "cmc-dex")) >= 5)
    seen = requests(sim, "cmc-dex")
    spot = [r["query"] for r in seen if r["path"] == "/cmc/v4/dex/spot-pairs/latest"]
    eth = [q for q in spot if q["network_slug"] == "ethereum"]
    assert [q.get("scroll_id") for q in eth] == [None, "s2"]
    assert all(r["headers"]["X-CMC_PRO_API_KEY"] == "dex-key" for r in seen)
    quotes = [r["query"] for r in seen if r["path"] == "/cmc/v4/dex/pairs/quotes/latest"]
    assert {q["network_slug"] for q in quotes} == {"ethereum", "solana"}
    recs = await read_topic(kafka_settings, topics.raw("cmc-dex"), min_records=5, timeout=10)
    envs = [decode_envelope(r.value) for r in recs]
    assert sorted(e.channel for e in envs).count("/v4/dex/spot-pairs/latest") == 3
    assert any(e.request and e.request.params.get("scroll_id") == "s2" for e in envs)


async def test_feargreed_requests_and_envelope(
    sim: SimServer, publisher: Publisher, kafka_settings: KafkaSettings, topics: Topics
) -> None:
    runner = runner_for(sim, publisher, "feargreed")
    assert await run_until(runner, lambda: len(requests(sim, "feargreed")) >= 1)
    assert requests(sim, "feargreed")[0]["path"] == "/feargreed/fng/"
    assert requests(sim, "feargreed")[0]["query"] == {"limit": "1", "format": "json"}
    [rec] = await read_topic(kafka_settings, topics.raw("feargreed"), min_records=1, timeout=10)
    env = decode_envelope(rec.value)
    assert rec.key == b"feargreed:/fng/" and env.channel == "/fng/"
    assert isinstance(json.loads(env.payload)["data"][0]["value"], str)


@pytest.mark.parametrize("fmt", ["json", "html"])
async def test_429_with_retry_after_pauses_every_endpoint_of_the_provider(
    sim: SimServer,
    publisher: Publisher,
    kafka_settings: KafkaSettings,
    topics: Topics,
    fmt: str,
) -> None:
    """After a 429 with ``Retry-After: 2`` no request reaches the provider for 2 s."""
    sim.sim.faults["coingecko.faults"] = [
        {"kind": "rate_limit", "retry_after": 2, "format": fmt, "path": "/simple/price"}
    ]
    runner = runner_for(
        sim, publisher, "coingecko", only=["simple_price", "global"], interval_s=0.2
    )
    assert await run_until(
        runner,
        lambda: any(
            r["at"] > requests(sim, "coingecko")[0]["at"] + 2.3 for r in requests(sim, "coingecko")
        ),
        8,
    )
    seen = requests(sim, "coingecko")
    limited_at = next(r["at"] for r in seen if r["path"].endswith("/simple/price"))
    retried = [r["at"] for r in seen if r["path"].endswith("/simple/price")][1]
    assert retried - limited_at >= 2.0 - 0.01  # the retry waited for Retry-After
    # /global polls every 0.2 s too; apart from a request already in flight when the 429
    # arrived, nothing reached the provider during the pause
    assert any(r["path"].endswith("/global") for r in seen if r["at"] > limited_at + 2.0)
    assert not [r for r in seen if limited_at + 0.3 < r["at"] < limited_at + 2.0 - 0.01]
    [event] = await feed_status(kafka_settings, topics, "rate_limited")
    assert event.source == "coingecko" and event.details["retry_after_s"] == 2.0
    assert runner.counters.snapshot()["rate_limited"] == 1
    metrics = generate_latest(REGISTRY).decode()
    assert (
        'ingest_rest_errors_total{endpoint="/simple/price",error_class="rate_limited",source="coingecko"}'
        in metrics
    )
    # after the pause the provider answered again and the state was reported as resumed
    assert await feed_status(kafka_settings, topics, "resumed")


async def test_cmc_429_error_code_without_retry_after_waits_the_default(
    sim: SimServer, publisher: Publisher
) -> None:
    sim.sim.faults["coinmarketcap.faults"] = [{"kind": "rate_limit", "code": 1008}]
    runner = runner_for(
        sim, publisher, "coinmarketcap", only=["quotes_latest"], default_retry_after_s=1.0
    )
    assert await run_until(runner, lambda: len(requests(sim, "coinmarketcap")) >= 2, 6)
    first, second = requests(sim, "coinmarketcap")[:2]
    assert second["at"] - first["at"] >= 1.0 - 0.01
    assert runner.counters.snapshot()["rate_limited"] == 1


async def test_malformed_body_goes_to_the_dead_letter_topic_and_polling_continues(
    sim: SimServer, publisher: Publisher, kafka_settings: KafkaSettings, topics: Topics
) -> None:
    sim.sim.faults["feargreed.faults"] = [{"kind": "malformed"}]
    runner = runner_for(sim, publisher, "feargreed", interval_s=0.2)
    assert await run_until(runner, lambda: len(requests(sim, "feargreed")) >= 2)
    [dead] = await read_topic(kafka_settings, topics.dlq, min_records=1, timeout=10)
    letter = DeadLetter.from_headers(dead.headers)
    assert letter.reason == "response body is not valid JSON"
    assert letter.error_class == "InvalidResponseError" and letter.service == "ingest-rest-test"
    assert letter.origin_topic == topics.raw("feargreed") and letter.origin_offset == -1
    env = decode_envelope(dead.value)
    assert env.payload.startswith('{"data": [{"id": 1') and env.channel == "/fng/"
    good = await read_topic(kafka_settings, topics.raw("feargreed"), min_records=1, timeout=10)
    assert json.loads(decode_envelope(good[0].value).payload)["name"] == "Fear and Greed Index"
    assert runner.counters.snapshot()["dead_letters"] == 1


async def test_cmc_unexpected_envelope_on_200_is_dead_lettered(
    sim: SimServer, publisher: Publisher, kafka_settings: KafkaSettings, topics: Topics
) -> None:
    sim.sim.faults["cmc-dex.faults"] = [{"kind": "html"}]
    runner = runner_for(
        sim, publisher, "cmc-dex", only=["pairs_quotes_latest"], pairs={"solana": ["x"]}
    )
    assert await run_until(runner, lambda: runner.counters.snapshot().get("dead_letters") == 1)
    [dead] = await read_topic(kafka_settings, topics.dlq, min_records=1, timeout=10)
    assert DeadLetter.from_headers(dead.headers).origin_topic == topics.raw("cmc-dex")


async def test_wrong_key_is_reported_once_and_stops_only_that_source(
    sim: SimServer,
    publisher: Publisher,
    kafka_settings: KafkaSettings,
    topics: Topics,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim.sim.faults["coinmarketcap.api_key"] = "the-right-key"
    cmc = runner_for(
        sim, publisher, "coinmarketcap", api_key=SecretStr("a-wrong-key"), interval_s=0.1
    )
    fng = runner_for(sim, publisher, "feargreed", interval_s=0.1)
    caplog.set_level(logging.INFO)
    fng_task = asyncio.create_task(fng.run())
    try:
        await asyncio.wait_for(cmc.run(), 10)  # returns by itself: the source stopped
        before = len(requests(sim, "feargreed"))
        await asyncio.sleep(0.5)
        assert len(requests(sim, "feargreed")) > before  # the other source keeps polling
    finally:
        fng_task.cancel()
        await asyncio.gather(fng_task, return_exceptions=True)
    assert len(requests(sim, "coinmarketcap")) <= 4  # no crash loop: one try per endpoint
    ok, detail = cmc.readiness()
    assert not ok and "1001" in detail and "INGEST_REST_COINMARKETCAP__API_KEY" in detail
    events = await feed_status(kafka_settings, topics, "source_error")
    assert len(events) == 1 and events[0].source == "coinmarketcap"
    stopped = [r for r in caplog.records if r.getMessage().startswith("source stopped")]
    assert len(stopped) == 1
    assert "a-wrong-key" not in caplog.text
    assert "a-wrong-key" not in generate_latest(REGISTRY).decode()


async def test_cmc_error_code_on_http_200_stops_the_source(
    sim: SimServer, publisher: Publisher
) -> None:
    sim.sim.faults["coinmarketcap.faults"] = [
        {"kind": "error_code", "code": 1006, "http_status": 200}
    ]
    runner = runner_for(sim, publisher, "coinmarketcap", only=["info"])
    await asyncio.wait_for(runner.run(), 10)
    assert runner.stopped_reason is not None and "1006" in runner.stopped_reason


async def test_missing_key_gets_the_documented_401_and_stops(
    sim: SimServer, publisher: Publisher
) -> None:
    sim.sim.faults["coingecko.api_key"] = "needed"
    runner = runner_for(sim, publisher, "coingecko", only=["ping"])
    await asyncio.wait_for(runner.run(), 10)
    assert runner.stopped_reason is not None and "10002" in runner.stopped_reason


async def test_5xx_is_retried_with_backoff_and_published_with_the_attempt(
    sim: SimServer, publisher: Publisher, kafka_settings: KafkaSettings, topics: Topics
) -> None:
    sim.sim.faults["feargreed.faults"] = [{"kind": "status", "status": 503, "count": 2}]
    runner = runner_for(sim, publisher, "feargreed")
    assert await run_until(runner, lambda: runner.counters.snapshot().get("published") == 1)
    assert len(requests(sim, "feargreed")) == 3
    [rec] = await read_topic(kafka_settings, topics.raw("feargreed"), min_records=1, timeout=10)
    env = decode_envelope(rec.value)
    assert env.request is not None and env.request.attempt == 3 and env.request.status == 200
    assert runner.counters.snapshot()["errors_transient"] == 2


async def test_slow_response_times_out_and_is_retried(sim: SimServer, publisher: Publisher) -> None:
    sim.sim.faults["feargreed.faults"] = [{"kind": "slow", "delay_s": 1.5}]
    runner = runner_for(sim, publisher, "feargreed", timeout_s=0.4)
    assert await run_until(runner, lambda: runner.counters.snapshot().get("published") == 1)
    assert runner.counters.snapshot()["errors_transient"] == 1
    metrics = generate_latest(REGISTRY).decode()
    assert (
        'ingest_rest_requests_total{endpoint="/fng/",source="feargreed",status="timeout"}'
        in metrics
    )


async def test_circuit_opens_on_repeated_failures_then_probes_and_closes(
    sim: SimServer, publisher: Publisher, kafka_settings: KafkaSettings, topics: Topics
) -> None:
    sim.sim.faults["cmc-dex.faults"] = [{"kind": "status", "status": 500, "count": -1}]
    runner = runner_for(
        sim,
        publisher,
        "cmc-dex",
        only=["pairs_quotes_latest"],
        interval_s=0.1,
        max_retries=0,
        circuit_failure_threshold=3,
        circuit_open_s=2.0,
    )

    async def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
        for _ in range(int(timeout / 0.02)):
            if condition():
                return True
            await asyncio.sleep(0.02)
        return condition()

    task = asyncio.create_task(runner.run())
    try:
        assert await wait_for(lambda: str(runner.circuit.state) == "open", 10)
        assert runner.readiness() == (False, "circuit open: the provider keeps failing")
        await asyncio.sleep(0.5)
        sim.sim.faults.pop("cmc-dex.faults")
        assert await wait_for(
            lambda: str(runner.circuit.state) == "closed" and runner.last_success is not None, 15
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    times = [r["at"] for r in requests(sim, "cmc-dex")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) >= 2.0 - 0.01  # nothing was sent while the circuit was open
    assert len(times) >= 4  # three failures, then the probe
    assert (await feed_status(kafka_settings, topics, "circuit_open"))[0].source == "cmc-dex"
    assert (await feed_status(kafka_settings, topics, "circuit_closed"))[0].source == "cmc-dex"
    assert runner.readiness()[0]


async def test_budget_of_n_calls_per_window_is_never_exceeded_under_load(
    sim: SimServer, publisher: Publisher
) -> None:
    """Six endpoints polling every 50 ms share a budget of 6 calls per 2-second window."""
    runner = runner_for(
        sim,
        publisher,
        "coingecko",
        interval_s=0.05,
        calls_per_minute=6,
        rate_window_s=2.0,
        ids=["bitcoin"],
    )
    await run_until(runner, lambda: False, timeout=4.5)
    times = sorted(r["at"] for r in requests(sim, "coingecko"))
    assert len(times) >= 6 * 2  # the demand saturated the budget
    for i, start in enumerate(times):
        # arrival jitter on a loaded machine: 10% slack on the 2 s window
        assert len([t for t in times[i:] if t < start + 1.8]) <= 6


async def test_cmc_daily_credit_budget_stops_requests_when_spent(
    sim: SimServer, publisher: Publisher
) -> None:
    """With 3 credits a day left, four 1-credit endpoints get three requests, then wait."""
    runner = runner_for(sim, publisher, "coinmarketcap", credits_per_day=3, interval_s=0.1)
    await run_until(runner, lambda: False, timeout=1.5)
    assert len(requests(sim, "coinmarketcap")) == 3
    assert runner.budget.remaining(asyncio.get_running_loop().time())["credits"] == 0
