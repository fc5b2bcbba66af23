"""What the venues sent against what reached Kafka: the completeness checks shared by the
ingest-ws tests (restarts, live gaps, replicas handing streams over)."""

from __future__ import annotations

from collections import defaultdict

from coinstream.devstack.kafkatools import read_topic
from coinstream.devstack.stack import DEMO_SYMBOLS
from coinstream.marketsim.market import Market
from coinstream.runtime import KafkaSettings
from coinstream.schemas import FeedStatusEvent, Topics, decode_event
from support.rawtrades import Ids, trades_in

VENUES = ("binance", "coinbase", "kraken")


async def raw_ids(kafka: KafkaSettings, topics: Topics) -> Ids:
    records = await read_topic(
        kafka, [topics.raw(v) for v in VENUES], timeout=20, until=lambda _: False, idle_s=0.75
    )
    out: Ids = defaultdict(set)
    for r in records:
        for k, ids in trades_in(r).items():
            out[k] |= ids
    return out


async def statuses(kafka: KafkaSettings, topics: Topics) -> list[FeedStatusEvent]:
    records = await read_topic(
        kafka, topics.feed_status, timeout=10, until=lambda _: False, idle_s=0.75
    )
    return [e for e in (decode_event(r.value) for r in records) if isinstance(e, FeedStatusEvent)]


def truth(market: Market, seen: Ids) -> Ids:
    """What each venue sent: every trade of its symbols from the first one seen on Kafka."""
    out: Ids = {}
    for venue in VENUES:
        for symbol in DEMO_SYMBOLS[venue]:
            ids = [t.trade_id for t in market.history(symbol)]
            first = min(seen.get((venue, symbol)) or {ids[-1]})
            out[(venue, symbol)] = {i for i in ids if i >= first}
    return out


def unrecoverable(events: list[FeedStatusEvent]) -> Ids:
    out: Ids = defaultdict(set)
    for e in events:
        if e.status == "gap_unrecoverable" and e.symbol:
            for a, b in e.details["ranges"]:  # type: ignore[union-attr]
                out[(e.source, e.symbol)].update(range(int(a), int(b) + 1))  # type: ignore[arg-type]
    return out
