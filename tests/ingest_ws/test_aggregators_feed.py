"""The CoinGecko and CoinMarketCap WebSocket venues against the simulator and a real broker:
every channel, resubscription, keys, limits, credit budgets, gaps and every simulated fault.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from prometheus_client import REGISTRY

from coinstream.devstack.kafkatools import read_topic
from coinstream.ingest_ws.settings import IngestWsSettings
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaSettings
from coinstream.schemas import FeedStatusEvent, Topics, decode_envelope

from .test_feed import FAST, feeds_running, has, shard, statuses, wait_for

pytestmark = pytest.mark.kafka

CG, CMC = "coingecko-ws", "coinmarketcap-ws"
PEPE_WETH = "eth:0xa43fe16908251ee70ef74718545e4fe6c5ccec9f"
WETH_USDT = "eth:0x11b815efb8f581194ae79006d24e0d814b7697f6"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
PEPE = "0x6982508145454ce325ddbe47a25d4ec3d2311933"
SIM_FAST = {
    "coingecko-ws.c1_interval_s": 0.2,
    "coingecko-ws.g3_interval_s": 0.2,
    "coingecko-ws.ping_interval_s": 0.2,
    "coinmarketcap-ws.market_interval_s": 0.2,
}


def settings_for(kafka: KafkaSettings, sim: SimServer, venue: str, **kw: Any) -> IngestWsSettings:
    """Only ``venue`` enabled, pointed at the simulator, with the simulator's key."""
    venues: dict[str, Any] = {
        name: {"enabled": False} for name in ("binance", "coinbase", "kraken", CG, CMC)
    }
    if venue == CG:
        own: dict[str, Any] = {
            "url": f"{sim.ws_url}/coingecko-ws/v1",
            "api_key": "cg-key",
            "coin_ids": ["bitcoin", "ethereum"],
            "tokens": [f"eth:{WETH}"],
            "pools": [PEPE_WETH, WETH_USDT],
            "ohlcv_tokens": ["base", "quote"],
        }
    else:
        own = {
            "url": f"{sim.ws_url}/coinmarketcap-ws/v1",
            "api_key": "cmc-key",
            "crypto_ids": [1, 1027],
            "tokens": [f"1:{PEPE}", f"1:{WETH}"],
            "kline_intervals": ["1s"],
            "app_ping_interval_s": 0.5,
        }
    fast = {**FAST, "silence_min_s": 2.0, "silence_max_s": 3.0, "first_message_timeout_s": 5.0}
    venues[venue.replace("-", "_")] = {"enabled": True, **fast, **own, **kw}
    return IngestWsSettings(kafka=kafka, watchdog_interval_s=0.1, **venues)


def sim_with(market: Market, **faults: Any) -> SimServer:
    server = SimServer(market)
    server.sim.faults.update(SIM_FAST)
    server.sim.faults.update(
        {"coingecko-ws.api_key": "cg-key", "coinmarketcap-ws.api_key": "cmc-key"}
    )
    server.sim.faults.update(faults)
    return server


def channels_of(records: list[Any]) -> set[str]:
    return {decode_envelope(r.value).channel for r in records}


def g3_sides(records: list[Any]) -> set[str]:
    envelopes = (decode_envelope(r.value) for r in records)
    return {json.loads(e.payload).get("to") for e in envelopes if e.channel == "OnchainOHLCV"}


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- CoinGecko ------------------------------------------------------------------------------


async def test_coingecko_streams_every_channel_verbatim_with_its_key(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """C1, G1, G2 and G3 reach the raw topic verbatim, keyed by target; the key went in the
    handshake header; credits are counted per data message."""
    before = counter("ingest_ws_credits_used_total", venue=CG)
    async with sim_with(Market(rate=30, seed=41)) as sim:
        settings = settings_for(kafka_settings, sim, CG)
        wanted = {"CGSimplePrice", "OnchainSimpleTokenPrice", "OnchainTrade", "OnchainOHLCV"}
        async with feeds_running(settings):
            records = await read_topic(
                kafka_settings, topics.raw(CG), timeout=30,
                until=lambda rs: channels_of(rs) >= wanted and g3_sides(rs) == {"base", "quote"},
            )  # fmt: skip
    envelopes = [decode_envelope(r.value) for r in records]
    keys = {(e.channel, r.key.decode()) for e, r in zip(envelopes, records, strict=True)}
    assert ("CGSimplePrice", "coingecko-ws:bitcoin") in keys
    assert ("OnchainSimpleTokenPrice", f"coingecko-ws:eth:{WETH}") in keys
    assert ("OnchainTrade", f"coingecko-ws:{PEPE_WETH}") in keys
    assert ("OnchainOHLCV", f"coingecko-ws:{WETH_USDT}") in keys
    g3 = [json.loads(e.payload) for e in envelopes if e.channel == "OnchainOHLCV"]
    assert {p["to"] for p in g3} == {"base", "quote"}
    assert all(e.payload.startswith("{") for e in envelopes)  # verbatim frames
    connections = sim.sim.recordings["coingecko-ws.connections"]
    assert connections[0]["key"] == "cg-key" and connections[0]["query"] == {}
    commands = sim.sim.recordings["coingecko-ws.commands"]
    assert sum('"subscribe"' in c for c in commands) == 4
    data = sum(1 for e in envelopes if e.channel in wanted)
    assert counter("ingest_ws_credits_used_total", venue=CG) - before >= data * 0.1 - 1e-9


async def test_coingecko_resubscribes_after_a_reconnect(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """There is no resume: the new connection sends subscribe and set_* again."""
    async with sim_with(Market(rate=30, seed=42)) as sim:
        settings = settings_for(kafka_settings, sim, CG, channels=["C1"])
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: s.state == 3)
            sim.sim.faults["coingecko-ws.disconnect"] = 1
            await wait_for(lambda: s.connections == 2 and s.state == 3, 15)
            events = await statuses(kafka_settings, topics, has("connected", source=CG))
    assert has("connected", source=CG)(events)
    commands = sim.sim.recordings["coingecko-ws.commands"]
    assert [json.loads(c)["command"] for c in commands] == ["subscribe", "message"] * 2
    assert any(e.status == "disconnected" and e.channel == "CGSimplePrice" for e in events)


@pytest.mark.parametrize("mode", ["http", "disconnect"])
async def test_coingecko_bad_key_stops_the_shard_with_one_clear_event(
    kafka_settings: KafkaSettings, topics: Topics, mode: str
) -> None:
    """A refused key (HTTP 401, or a disconnect frame saying not to reconnect) is final:
    one source_error naming the variable, and no reconnect loop."""
    async with sim_with(Market(rate=10, seed=43)) as sim:
        sim.sim.faults.update({"coingecko-ws.api_key": "other", "coingecko-ws.auth_failure": mode})
        settings = settings_for(kafka_settings, sim, CG, channels=["C1"])
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            events = await statuses(
                kafka_settings, topics, lambda es: any(e.details.get("final") for e in es)
            )
            await asyncio.sleep(1.0)
            assert s.final is not None and s.state == 0
    (final,) = [e for e in events if e.details.get("final")]
    assert final.status == "source_error" and final.source == CG
    assert "does not reconnect" in final.cause
    if mode == "http":
        assert "INGEST_WS_COINGECKO_WS__API_KEY" in final.cause and "401" in final.cause
    else:
        assert "unauthorized" in final.cause
    assert len(sim.sim.recordings["coingecko-ws.connections"]) == 1


async def test_coingecko_limits_errors_and_malformed_frames(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """A subscription over the server's limit is reported; a malformed frame is published
    verbatim (the normalizer dead-letters it) and the stream goes on."""
    async with sim_with(Market(rate=30, seed=44), **{"coingecko-ws.max_subscriptions": 1}) as sim:
        settings = settings_for(kafka_settings, sim, CG, channels=["C1"])
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            events = await statuses(kafka_settings, topics, has("source_error", source=CG))
            sim.sim.faults["coingecko-ws.malformed"] = 1
            records = await read_topic(
                kafka_settings, topics.raw(CG), timeout=15,
                until=lambda rs: "unknown" in channels_of(rs),
            )  # fmt: skip
            assert s.state == 3
    error = next(e for e in events if e.status == "source_error")
    assert "4029" in error.cause
    bad = [
        decode_envelope(r.value) for r in records if decode_envelope(r.value).channel == "unknown"
    ]
    assert bad and not bad[0].payload.endswith("}")


async def test_coingecko_close_codes_and_silence_reconnect(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    async with sim_with(Market(rate=30, seed=45)) as sim:
        settings = settings_for(kafka_settings, sim, CG, channels=["C1"])
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: s.state == 3)
            sim.sim.faults["coingecko-ws.close_code"] = 4001
            await wait_for(lambda: s.connections == 2 and s.state == 3, 15)
            sim.sim.faults["coingecko-ws.silent"] = True
            await wait_for(lambda: s.connections >= 3, 20)
            sim.sim.faults.pop("coingecko-ws.silent")
            events = await statuses(
                kafka_settings, topics,
                lambda es: has("stale", source=CG)(es) and any(
                    e.status == "disconnected" and "4001" in e.cause for e in es),
            )  # fmt: skip
    assert any(e.status == "disconnected" and "silent" in e.cause for e in events)
    assert any(e.status == "disconnected" and "code 4001" in e.cause for e in events)
    assert any(e.status == "stale" and e.channel == "CGSimplePrice" for e in events)
    assert s.final is None


async def test_coingecko_missed_ohlcv_candles_are_a_gap(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """G3 candles are a sequence (open time / interval): a silent stretch longer than a few
    1-second candles is reported as a gap naming the candles, updates are never duplicates."""
    async with sim_with(Market(rate=30, seed=46)) as sim:
        settings = settings_for(
            kafka_settings, sim, CG, channels=["G3"], pools=[WETH_USDT],
            ohlcv_intervals=["1s"], ohlcv_tokens=["base"], gap_grace_s=0.1,
        )  # fmt: skip
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: s.state == 3)
            await asyncio.sleep(1.5)
            sim.sim.faults["coingecko-ws.silent"] = True
            await asyncio.sleep(3.5)
            sim.sim.faults.pop("coingecko-ws.silent")
            events = await statuses(kafka_settings, topics, has("gap", source=CG), timeout=20)
    gap = next(e for e in events if e.status == "gap")
    assert gap.channel == "OnchainOHLCV" and gap.details["missing"] >= 2
    assert "candle" in gap.details["sequence"]
    assert gap.details["backfill"] == "unavailable"


async def test_coingecko_daily_credit_budget_stops_the_stream(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """At the budget every shard closes with one rate_limited event; nothing more is read."""
    async with sim_with(Market(rate=30, seed=47)) as sim:
        settings = settings_for(kafka_settings, sim, CG, channels=["C1"], daily_credit_budget=0.5)
        async with feeds_running(settings) as (feeds, _):
            venue = feeds.venues[0]
            s = shard(feeds)
            events = await statuses(kafka_settings, topics, has("rate_limited", source=CG))
            await asyncio.sleep(1.0)
            frames = venue.frames
            await asyncio.sleep(1.0)
            assert venue.frames == frames and s.state == 0
            # billed per socket read: frames read together with the fifth are counted too
            assert venue.budget is not None and venue.budget.messages >= 5
    limited = next(e for e in events if e.status == "rate_limited")
    assert re.search(r"daily credit budget reached: 0\.[5-9]\d* of 0\.5 credits", limited.cause)
    assert "INGEST_WS_COINGECKO_WS__DAILY_CREDIT_BUDGET" in limited.cause
    assert limited.details["resume_at"].endswith("T00:00:00+00:00")


# -- CoinMarketCap ----------------------------------------------------------------------------


async def test_coinmarketcap_streams_every_channel_with_acks_and_pings(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    wanted = {"market@crypto_latest_price", "onchain@token_agg_event", "onchain@transaction",
              "onchain@kline"}  # fmt: skip
    async with sim_with(Market(rate=30, seed=51)) as sim:
        settings = settings_for(kafka_settings, sim, CMC)
        async with feeds_running(settings) as (feeds, _):
            records = await read_topic(
                kafka_settings, topics.raw(CMC), timeout=30,
                until=lambda rs: channels_of(rs) >= wanted | {"ack"},
            )  # fmt: skip
            s = shard(feeds)
            await asyncio.sleep(1.5)  # application pings every 0.5 s, each answered
            assert s.connections == 1
    assert channels_of(records) >= wanted | {"ack", "welcome"}  # pongs are not published
    subs = REGISTRY.get_sample_value("ingest_ws_subscriptions", {"venue": CMC, "shard": "0"})
    assert subs == 2 + 2 + 2 + 2  # ids, token prices, swaps, klines: one per id/address
    keys = {r.key.decode() for r in records}
    assert {
        "coinmarketcap-ws:1",
        f"coinmarketcap-ws:1:{PEPE}",
        f"coinmarketcap-ws:1:{WETH}",
    } <= keys
    assert sim.sim.recordings["coinmarketcap-ws.connections"][0]["key"] == "cmc-key"
    pings = [json.loads(c) for c in sim.sim.recordings["coinmarketcap-ws.commands"]]
    assert any(c["method"] == "ping" for c in pings) and s.final is None


@pytest.mark.parametrize(("code", "final"), [(4100, True), (4102, True), (1001, False)])
async def test_coinmarketcap_close_codes(
    kafka_settings: KafkaSettings, topics: Topics, code: int, final: bool
) -> None:
    """4100-4102 (key, plan) stop the shard; 1001 (write idle timeout) reconnects."""
    async with sim_with(Market(rate=30, seed=52)) as sim:
        settings = settings_for(kafka_settings, sim, CMC, channels=["market"])
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: s.state == 3)
            sim.sim.faults["coinmarketcap-ws.close_code"] = code
            if final:
                await wait_for(lambda: s.final is not None, 10)
                await asyncio.sleep(0.5)
                assert s.connections == 1 and str(code) in s.final
            else:
                await wait_for(lambda: s.connections == 2 and s.state == 3, 15)


async def test_coinmarketcap_bad_key_auth_error_and_connection_limit(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """A wrong key is closed with 4100 at once (final); error 1010 (monthly credits) is final;
    4004 (too many connections) is retried."""
    async with sim_with(Market(rate=30, seed=53)) as sim:
        sim.sim.faults["coinmarketcap-ws.api_key"] = "other"
        settings = settings_for(kafka_settings, sim, CMC, channels=["market"])
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: s.final is not None, 10)
        assert "4100" in (s.final or "")
        sim.sim.faults["coinmarketcap-ws.api_key"] = "cmc-key"
        sim.sim.faults["coinmarketcap-ws.error_code"] = "1010"
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: s.final is not None, 10)
        assert "1010" in (s.final or "") and "monthly credits" in (s.final or "")
        sim.sim.faults["coinmarketcap-ws.max_connections"] = 0
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: len(s.delays) >= 2, 15)
            assert s.final is None
        events = await statuses(
            kafka_settings, topics,
            lambda es: sum(1 for e in es if e.details.get("final")) >= 2
            and any("4004" in e.cause for e in es),
        )  # fmt: skip
    assert all(e.source == CMC for e in events if isinstance(e, FeedStatusEvent))
    finals = [e for e in events if e.details.get("final")]
    assert any("4100" in e.cause for e in finals) and any("1010" in e.cause for e in finals)
    assert any("4004" in e.cause for e in events)


async def test_coinmarketcap_subscription_limit_missing_pongs_and_untagged_frames(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """The kline subscription over the limit is refused (2303, reported); untagged swap pushes
    are recognised by their keys; a missing pong replaces the connection."""
    async with sim_with(Market(rate=30, seed=54)) as sim:
        sim.sim.faults.update({"coinmarketcap-ws.sub_limit": 3, "coinmarketcap-ws.untagged": True})
        settings = settings_for(
            kafka_settings, sim, CMC, channels=["market", "swaps", "klines"],
            tokens=[f"1:{PEPE}"], ping_interval_s=None,  # only application pings
        )  # fmt: skip
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            events = await statuses(kafka_settings, topics, has("source_error", source=CMC))
            records = await read_topic(
                kafka_settings, topics.raw(CMC), timeout=15,
                until=lambda rs: "onchain@transaction" in channels_of(rs),
            )  # fmt: skip
            sim.sim.faults["coinmarketcap-ws.no_pong"] = True
            await wait_for(lambda: s.connections >= 2, 15)
            sim.sim.faults.pop("coinmarketcap-ws.no_pong")
        feed = await statuses(
            kafka_settings, topics,
            lambda es: any("app pong missing" in e.cause for e in es),
        )  # fmt: skip
    assert any("2303" in e.cause for e in events if e.status == "source_error")
    swap = next(r for r in records if decode_envelope(r.value).channel == "onchain@transaction")
    assert swap.key == f"coinmarketcap-ws:1:{PEPE}".encode()
    assert "channel" not in json.loads(decode_envelope(swap.value).payload)
    assert any("app pong missing" in e.cause for e in feed)


async def test_coinmarketcap_missed_klines_are_a_gap(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    async with sim_with(Market(rate=30, seed=55)) as sim:
        settings = settings_for(
            kafka_settings, sim, CMC, channels=["klines"], tokens=[f"1:{WETH}"], gap_grace_s=0.1
        )
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: s.state == 3, 15)
            await asyncio.sleep(1.5)
            sim.sim.faults["coinmarketcap-ws.silent"] = True
            await asyncio.sleep(3.0)
            sim.sim.faults.pop("coinmarketcap-ws.silent")
            events = await statuses(kafka_settings, topics, has("gap", source=CMC), timeout=20)
    gap = next(e for e in events if e.status == "gap")
    assert gap.channel == "onchain@kline" and gap.symbol == f"1:{WETH}:1s"
    assert gap.details["missing"] >= 1


async def test_coinmarketcap_budget_counts_credits_per_message(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    async with sim_with(Market(rate=30, seed=56)) as sim:
        settings = settings_for(
            kafka_settings, sim, CMC, channels=["market"], daily_credit_budget=0.1
        )
        async with feeds_running(settings) as (feeds, _):
            venue = feeds.venues[0]
            await statuses(kafka_settings, topics, has("rate_limited", source=CMC))
            assert venue.budget is not None and venue.budget.messages >= 4  # 4 x 0.025
            assert (
                REGISTRY.get_sample_value("ingest_ws_credit_budget_remaining", {"venue": CMC}) == 0
            )


# -- the remaining simulator faults, per venue ----------------------------------------------------


@pytest.mark.parametrize("venue", [CG, CMC])
async def test_refused_upgrades_and_dropped_connections_recover_and_resubscribe(
    kafka_settings: KafkaSettings, topics: Topics, venue: str
) -> None:
    """HTTP 503 at the upgrade is retried with backoff (not final); an abrupt disconnect is
    followed by a new connection that subscribes again and delivers data."""
    async with sim_with(Market(rate=30, seed=61), **{f"{venue}.reject": 1}) as sim:
        settings = settings_for(
            kafka_settings, sim, venue, channels=["C1" if venue == CG else "market"]
        )
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: s.state == 3, 15)
            sim.sim.faults[f"{venue}.disconnect"] = 1
            await wait_for(lambda: s.connections == 2 and s.state == 3, 15)
            events = await statuses(
                kafka_settings, topics,
                lambda es: any("503" in e.cause for e in es) and has("connected", source=venue)(es),
            )  # fmt: skip
    assert any("503" in e.cause for e in events)
    assert s.final is None and s.delays  # backed off after the refusal
    subscribes = [c for c in sim.sim.recordings[f"{venue}.commands"] if "subscribe" in c]
    assert len(subscribes) == 2  # once per connection
    assert any(e.status == "disconnected" and "without close frame" in e.cause for e in events)


async def test_coingecko_missing_pongs_and_error_code_refusals_reconnect(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Unanswered WebSocket pings close the connection (keepalive); a key refusal sent as a
    code frame is reported and retried (undocumented: only the documented forms are final)."""
    async with sim_with(Market(rate=30, seed=62)) as sim:
        settings = settings_for(kafka_settings, sim, CG, channels=["C1"])
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: s.state == 3, 15)
            sim.sim.faults["coingecko-ws.no_pong"] = True
            await wait_for(lambda: s.connections >= 2, 15)
            sim.sim.faults.pop("coingecko-ws.no_pong")
            sim.sim.faults.update(
                {"coingecko-ws.api_key": "other", "coingecko-ws.auth_failure": "code"}
            )
            sim.sim.faults["coingecko-ws.disconnect"] = 1  # the next connections meet the refusal
            events = await statuses(
                kafka_settings, topics,
                lambda es: any("4010" in e.cause for e in es)
                and any("keepalive" in e.cause for e in es),
            )  # fmt: skip
            assert s.final is None
    assert any(e.status == "source_error" and "4010" in e.cause for e in events)
    assert any(e.status == "disconnected" and "keepalive" in e.cause for e in events)


async def test_coinmarketcap_malformed_frames_are_published_verbatim(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    async with sim_with(Market(rate=30, seed=63)) as sim:
        settings = settings_for(kafka_settings, sim, CMC, channels=["market"])
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: s.state == 3, 15)
            sim.sim.faults["coinmarketcap-ws.malformed"] = 1
            records = await read_topic(
                kafka_settings, topics.raw(CMC), timeout=15,
                until=lambda rs: "unknown" in channels_of(rs),
            )  # fmt: skip
            assert s.state == 3 and s.connections == 1
    bad = [
        decode_envelope(r.value) for r in records if decode_envelope(r.value).channel == "unknown"
    ]
    assert bad[0].payload.startswith('{"type":"data"') and not bad[0].payload.endswith("}")
