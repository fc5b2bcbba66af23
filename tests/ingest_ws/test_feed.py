"""Connection behaviour against the simulator's faults, with a real broker.

Every test runs the real feed loop (websockets client) against the simulator (aiohttp server)
and reads feed-status events and raw envelopes back from Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from coinstream.devstack.kafkatools import read_topic
from coinstream.ingest_ws.app import FeedSet
from coinstream.ingest_ws.feed import Shard
from coinstream.ingest_ws.publisher import KafkaPublisher
from coinstream.ingest_ws.settings import IngestWsSettings
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaProducer, KafkaSettings
from coinstream.schemas import FeedStatusEvent, Topics, decode_envelope, decode_event

pytestmark = pytest.mark.kafka

FAST: dict[str, Any] = {
    "ping_interval_s": 0.5,
    "ping_timeout_s": 0.5,
    "backoff_initial_s": 0.1,
    "backoff_max_s": 1.0,
    "backoff_reset_after_s": 30.0,
    "silence_min_s": 0.4,
    "silence_max_s": 1.0,
    "stale_min_s": 0.4,
    "stale_max_s": 1.0,
    "first_message_timeout_s": 2.0,
    "gap_grace_s": 0.3,
    "handover_timeout_s": 2.0,
}


def make_settings(
    kafka: KafkaSettings, sim: SimServer, venue: str, **overrides: Any
) -> IngestWsSettings:
    urls = {
        "binance": f"{sim.ws_url}/binance",
        "coinbase": f"{sim.ws_url}/coinbase",
        "kraken": f"{sim.ws_url}/kraken/v2",
    }
    symbols = {"binance": ["BTC-USDT"], "coinbase": ["BTC-USD"], "kraken": ["BTC-USD"]}
    venues: dict[str, Any] = {
        name: {
            "enabled": name == venue,
            "url": url,
            "rest_url": f"{sim.base_url}/{name}",
            "symbols": symbols[name],
            **FAST,
        }
        for name, url in urls.items()
    }
    venues[venue].update(overrides)
    return IngestWsSettings(kafka=kafka, watchdog_interval_s=0.1, **venues)


@contextlib.asynccontextmanager
async def feeds_running(
    settings: IngestWsSettings, start_publisher: bool = True, buffer: int = 50_000
) -> AsyncIterator[tuple[FeedSet, KafkaPublisher]]:
    async with KafkaProducer(settings.kafka) as producer:
        publisher = KafkaPublisher(producer, settings.kafka.topics, buffer, 2000)
        if start_publisher:
            await publisher.start()
        feeds = FeedSet(settings, publisher)
        stop = asyncio.Event()
        task = asyncio.create_task(feeds.run(stop))
        try:
            yield feeds, publisher
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await publisher.start()
            await publisher.aclose(5)


def shard(feeds: FeedSet) -> Shard:
    (venue,) = feeds.venues
    (only,) = venue.shards
    return only


async def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def statuses(
    kafka: KafkaSettings,
    topics: Topics,
    until: Callable[[list[FeedStatusEvent]], bool],
    timeout: float = 15.0,
) -> list[FeedStatusEvent]:
    def events(recs: list[Any]) -> list[FeedStatusEvent]:
        out = []
        for r in recs:
            e = decode_event(r.value)
            if isinstance(e, FeedStatusEvent):
                out.append(e)
        return out

    recs = await read_topic(
        kafka, topics.feed_status, timeout=timeout, until=lambda rs: until(events(rs))
    )
    return events(recs)


def has(status: str, **fields: Any) -> Callable[[list[FeedStatusEvent]], bool]:
    def check(events: list[FeedStatusEvent]) -> bool:
        return any(
            e.status == status and all(getattr(e, k) == v for k, v in fields.items())
            for e in events
        )

    return check


async def test_abrupt_disconnect_reconnects_and_reports_the_window_per_stream(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """A dropped TCP connection is reopened after a backoff; each stream gets a window event."""
    async with SimServer(Market(rate=20, seed=21)) as sim:
        settings = make_settings(kafka_settings, sim, "binance")
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: s.state == 3)
            sim.sim.faults["binance.disconnect"] = 1
            await wait_for(lambda: s.connections == 2 and s.state == 3)
            events = await statuses(
                kafka_settings,
                topics,
                lambda es: (
                    has("disconnected", symbol="BTC-USDT", channel="trade")(es)
                    and has("disconnected", symbol="BTC-USDT", channel="bookTicker")(es)
                ),
            )
    windows = [e for e in events if e.status == "disconnected" and e.symbol == "BTC-USDT"]
    assert {e.channel for e in windows} == {"trade", "bookTicker"}
    for e in windows:
        assert e.window_start is not None and e.window_end is not None
        assert e.window_start < e.window_end
        assert "without close frame" in e.cause
    outage = [e for e in events if e.status == "disconnected" and e.symbol is None]
    assert outage and outage[0].window_end is None
    assert s.delays and 0 < s.delays[0] <= settings.binance.backoff_initial_s


@pytest.mark.parametrize(
    ("venue", "channel", "sequence"),
    [
        ("binance", "trade", "trade_id"),
        ("kraken", "trade", "trade_id"),
        ("coinbase", None, "sequence_num"),
    ],
)
async def test_sequence_gap_publishes_a_gap_event(
    kafka_settings: KafkaSettings, topics: Topics, venue: str, channel: str | None, sequence: str
) -> None:
    """Frames the venue never sent show up as a gap event naming the missing ids."""
    async with SimServer(Market(rate=20, seed=22)) as sim:
        settings = make_settings(kafka_settings, sim, venue)
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: s.state == 3)
            await asyncio.sleep(0.3)
            sim.sim.faults[f"{venue}.gap"] = 3
            events = await statuses(kafka_settings, topics, has("gap", source=venue))
    # (Coinbase: the dropped frames may also hold trades, whose ids then jump too)
    gaps = [
        e
        for e in events
        if e.status == "gap" and e.source == venue and e.details["sequence"] == sequence
    ]
    assert len(gaps) == 1
    gap = gaps[0]
    assert gap.channel == channel
    assert gap.details["missing"] == 3 and gap.details["sequence"] == sequence
    assert gap.details["last_missing"] - gap.details["first_missing"] == 2
    assert gap.window_start is not None and gap.window_end is not None


def _count(name: str, venue: str = "binance") -> float:
    """A counter's value through prometheus_client's public registry API (0 before any)."""
    return REGISTRY.get_sample_value(name, {"venue": venue}) or 0.0


async def test_duplicates_are_dropped_and_out_of_order_frames_are_not_gaps(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Duplicated trades are published once; a swapped pair is published, with no gap event."""
    async with SimServer(Market(rate=20, seed=23)) as sim:
        settings = make_settings(kafka_settings, sim, "binance", channels=["trade"])
        dup_before = _count("ingest_ws_duplicates_total")
        late_before = _count("ingest_ws_out_of_order_total")
        async with feeds_running(settings) as (feeds, publisher):
            s = shard(feeds)
            await wait_for(lambda: s.state == 3)
            sim.sim.faults["binance.duplicate"] = 3
            await wait_for(lambda: "binance.duplicate" not in sim.sim.faults)
            sim.sim.faults["binance.reorder"] = 1
            await wait_for(lambda: "binance.reorder" not in sim.sim.faults)
            await asyncio.sleep(settings.binance.gap_grace_s + 0.5)
        sent = publisher.raw_sent
        records = await read_topic(kafka_settings, topics.raw("binance"), min_records=sent)
        feed = await read_topic(kafka_settings, topics.feed_status, timeout=1)
    ids = [json.loads(decode_envelope(r.value).payload)["data"]["t"] for r in records]
    assert len(ids) == len(set(ids)), "a duplicated trade was published twice"
    assert sorted(ids) == list(range(min(ids), max(ids) + 1)), "a trade is missing"
    assert ids != sorted(ids), "the simulator's swapped pair should arrive out of order"
    assert _count("ingest_ws_duplicates_total") - dup_before == 3
    assert _count("ingest_ws_out_of_order_total") - late_before == 1
    gap_events = [
        e
        for r in feed
        if isinstance(e := decode_event(r.value), FeedStatusEvent) and e.status == "gap"
    ]
    assert gap_events == []


async def test_silent_connection_is_reported_stale_and_replaced_without_a_tight_loop(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Connected-but-quiet: stale events, then reconnects whose delays grow (capped)."""
    async with SimServer(Market(rate=20, seed=24)) as sim:
        settings = make_settings(kafka_settings, sim, "coinbase", backoff_max_s=0.8)
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: s.state == 3)
            await asyncio.sleep(1.0)  # learn the cadence
            sim.sim.faults["coinbase.silent"] = True
            events = await statuses(
                kafka_settings,
                topics,
                lambda es: (
                    has("stale", channel="ticker", symbol="BTC-USD")(es)
                    and has("stale", channel="market_trades", symbol="BTC-USD")(es)
                ),
            )
            await wait_for(lambda: s.connections >= 3, timeout=10)
            await asyncio.sleep(2.0)
            attempts = s.connections
            delays = list(s.delays)
            sim.sim.faults.pop("coinbase.silent")
            await wait_for(lambda: s.state == 3, timeout=5)
            resumed = await statuses(
                kafka_settings, topics, has("resumed", channel="ticker", symbol="BTC-USD")
            )
    stale = [e for e in events if e.status == "stale"]
    assert all("no messages for" in e.cause for e in stale)
    assert any(e.status == "disconnected" and "silent" in e.cause for e in resumed)
    # each silent connection lives ~silence limit + the backoff: a handful, not hundreds
    assert attempts <= 10, f"tight reconnect loop: {attempts} connections"
    assert all(d <= settings.coinbase.backoff_max_s for d in delays)
    assert max(delays) > settings.coinbase.backoff_initial_s / 2


async def test_missing_pongs_close_the_connection_and_it_reconnects(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """A server that stops answering pings is detected by keepalive and replaced."""
    async with SimServer(Market(rate=20, seed=25)) as sim:
        settings = make_settings(kafka_settings, sim, "binance")
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: s.state == 3)
            sim.sim.faults["binance.no_pong"] = True
            events = await statuses(kafka_settings, topics, has("disconnected", symbol=None))
            sim.sim.faults.pop("binance.no_pong")
            await wait_for(lambda: s.connections >= 2 and s.state == 3)
    lost = next(e for e in events if e.status == "disconnected" and e.symbol is None)
    assert "ping timeout" in lost.cause


async def test_kraken_application_pong_missing_forces_a_reconnect(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Kraken's method=ping goes unanswered: the connection is closed and reopened."""
    async with SimServer(Market(rate=20, seed=26)) as sim:
        settings = make_settings(
            kafka_settings, sim, "kraken", app_ping_interval_s=0.3, ping_interval_s=None
        )
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: s.state == 3)
            await asyncio.sleep(0.5)
            sim.sim.faults["kraken.no_pong"] = True
            events = await statuses(kafka_settings, topics, has("disconnected", symbol=None))
            sim.sim.faults.pop("kraken.no_pong")
            await wait_for(lambda: s.connections >= 2 and s.state == 3)
    assert any(e.cause == "app pong missing" for e in events if e.status == "disconnected")


async def test_server_shutdown_is_handled_make_before_break(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """On serverShutdown the new connection opens before the old closes: no window, no gap."""
    async with SimServer(Market(rate=20, seed=27)) as sim:
        settings = make_settings(kafka_settings, sim, "binance", channels=["trade"])
        async with feeds_running(settings) as (feeds, publisher):
            s = shard(feeds)
            await wait_for(lambda: s.state == 3)
            await asyncio.sleep(0.3)
            sim.sim.faults["binance.shutdown"] = 1.0
            await wait_for(lambda: feeds.venues[0].counters.get("handovers", 0) == 1)
            await asyncio.sleep(1.5)  # past the old connection's close
        sent = publisher.raw_sent
        records = await read_topic(kafka_settings, topics.raw("binance"), min_records=sent)
        feed = await read_topic(kafka_settings, topics.feed_status, timeout=1)
    assert s.connections == 2
    conns = [decode_envelope(r.value).connection_id for r in records]
    assert len(set(conns)) == 2
    ids = sorted(
        json.loads(decode_envelope(r.value).payload)["data"]["t"]
        for r in records
        if "@trade" in decode_envelope(r.value).channel
    )
    assert ids == list(range(ids[0], ids[-1] + 1)), "trades lost during the handover"
    assert len(ids) == len(set(ids))
    bad = [
        e
        for r in feed
        if isinstance(e := decode_event(r.value), FeedStatusEvent)
        and e.status in ("gap", "disconnected")
    ]
    assert bad == []
    assert sim.sim.recordings["binance.faults"] == [{"fault": "shutdown"}]


async def test_connection_is_rotated_before_the_venue_age_limit(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """max_connection_age_s (24 h on Binance) rotates make-before-break, ahead of the server."""
    async with SimServer(Market(rate=20, seed=28)) as sim:
        sim.sim.faults["binance.max_age_s"] = 3.0
        settings = make_settings(kafka_settings, sim, "binance", max_connection_age_s=1.5)
        async with feeds_running(settings) as (feeds, _):
            await wait_for(lambda: feeds.venues[0].counters.get("handovers", 0) >= 2, timeout=8)
        feed = await read_topic(kafka_settings, topics.feed_status, timeout=1)
    assert "binance.faults" not in sim.sim.recordings  # the server never had to cut us off
    disconnects = [
        e
        for r in feed
        if isinstance(e := decode_event(r.value), FeedStatusEvent) and e.status == "disconnected"
    ]
    assert disconnects == []


async def test_refused_connections_back_off_exponentially_without_a_tight_loop(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Five refused upgrades (HTTP 503) are retried with growing, capped, jittered delays."""
    async with SimServer(Market(rate=20, seed=29)) as sim:
        sim.sim.faults["kraken.reject"] = 5
        settings = make_settings(
            kafka_settings, sim, "kraken", backoff_initial_s=0.05, backoff_max_s=0.4
        )
        async with feeds_running(settings) as (feeds, _):
            s = shard(feeds)
            await wait_for(lambda: s.state == 3, timeout=10)
    assert len(sim.sim.recordings["kraken.rejected"]) == 5
    delays = s.delays
    assert len(delays) == 5
    assert all(0 <= d <= 0.4 for d in delays)
    assert s.policy.failures == 5


async def test_slow_broker_never_stops_the_reader_answering_pings(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """With Kafka not draining, the bounded buffer drops (and reports) instead of blocking."""
    async with SimServer(Market(rate=50, seed=30)) as sim:
        settings = make_settings(
            kafka_settings, sim, "binance", ping_interval_s=0.2, ping_timeout_s=0.3
        )
        async with feeds_running(settings, start_publisher=False, buffer=20) as (feeds, publisher):
            s = shard(feeds)
            await wait_for(lambda: publisher.dropped > 50, timeout=10)
            await asyncio.sleep(1.5)  # several ping periods with the buffer full
            assert s.connections == 1 and s.state == 3, "the connection did not survive"
            await publisher.start()
            events = await statuses(kafka_settings, topics, has("gap", source="binance"))
    overflow = next(e for e in events if e.status == "gap")
    assert overflow.details["reason"] == "buffer_full" and overflow.details["dropped"] > 50


async def test_coinbase_subscribes_one_channel_per_message_within_the_deadline(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Each Coinbase subscribe names one channel; the simulator's 5 s deadline never fires."""
    async with SimServer(Market(rate=5, seed=31)) as sim:
        settings = make_settings(kafka_settings, sim, "coinbase", symbols=["BTC-USD", "ETH-USD"])
        async with feeds_running(settings) as (feeds, _):
            await wait_for(lambda: shard(feeds).state == 3)
    subs = sim.sim.recordings["coinbase.subscribe"]
    assert sorted(m["channel"] for m in subs) == ["heartbeats", "market_trades", "ticker"]
    assert all(m["products"] == ["BTC-USD", "ETH-USD"] for m in subs)
    assert "coinbase.violations" not in sim.sim.recordings


async def test_venue_error_messages_become_source_error_events(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """A Kraken subscribe rejection (pair not supported) is published as source_error."""
    async with SimServer(Market(rate=5, seed=32)) as sim:
        # USDC pairs pass the catalogue but the simulator's market does not list them
        settings = make_settings(kafka_settings, sim, "kraken", symbols=["BTC-USD", "BTC-USDC"])
        async with feeds_running(settings):
            events = await statuses(kafka_settings, topics, has("source_error", source="kraken"))
    err = next(e for e in events if e.status == "source_error")
    assert "Currency pair not supported BTC/USDC" in err.cause


async def test_streams_beyond_the_per_connection_limit_are_sharded(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Four streams with a limit of two per connection: two connections, both delivering."""
    async with SimServer(Market(rate=20, seed=33)) as sim:
        settings = make_settings(
            kafka_settings,
            sim,
            "binance",
            symbols=["BTC-USDT", "ETH-USDT"],
            max_streams_per_connection=2,
            url_max_streams=1,
        )
        async with feeds_running(settings) as (feeds, publisher):
            (venue,) = feeds.venues
            assert len(venue.shards) == 2
            await wait_for(lambda: all(s.state == 3 for s in venue.shards))
            await asyncio.sleep(0.5)
        sent = publisher.raw_sent
        records = await read_topic(kafka_settings, topics.raw("binance"), min_records=sent)
    conns = sim.sim.recordings["binance.connections"]
    assert sorted(c["streams"] for c in conns) == [["btcusdt@trade"], ["ethusdt@trade"]]
    by_conn: dict[str, set[str]] = {}
    for r in records:
        env = decode_envelope(r.value)
        by_conn.setdefault(env.connection_id or "", set()).add(env.channel)
    # the second stream of each shard came through its SUBSCRIBE message (acked: "control")
    assert sorted(map(sorted, by_conn.values())) == [
        ["btcusdt@bookTicker", "btcusdt@trade", "control"],
        ["control", "ethusdt@bookTicker", "ethusdt@trade"],
    ]
