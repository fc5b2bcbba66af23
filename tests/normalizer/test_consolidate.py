"""The consolidate role's core: trades keyed by asset in, consolidated prices out (pure)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from coinstream.normalizer.consolidate import ConsolidationCore
from coinstream.normalizer.settings import NormalizerSettings
from coinstream.schemas import PriceEvent, Topics, deterministic_id

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TOPIC = "p.normalizer.trades-by-asset.v1"


def core(**consolidated: object) -> ConsolidationCore:
    settings = NormalizerSettings(
        role="consolidate",
        consolidated={"interval_s": 10, "window_s": 30, "grace_s": 2, **consolidated},
    )
    return ConsolidationCore(settings, Topics("p"))


def trade(venue: str, symbol: str, i: int, seconds: float, price: str, size: str = "1") -> bytes:
    base, quote = symbol.split("-")
    t = T0 + timedelta(seconds=seconds)
    return PriceEvent(
        event_id=deterministic_id("trade", venue, symbol, i),
        event_time=t,
        received_at=t + timedelta(milliseconds=20),
        source=venue,
        kind="trade",
        symbol=symbol,
        base=base,
        quote=quote,
        asset_id="bitcoin",
        price=Decimal(price),
        size=Decimal(size),
        trade_id=str(i),
    ).to_json()


def run(c: ConsolidationCore, records: list[bytes]) -> list[dict[str, object]]:
    out = []
    for offset, value in enumerate(records):
        produced, letter = c.process(TOPIC, 0, offset, b"bitcoin", value)
        assert letter is None
        out += [json.loads(o.value) for o in produced if o.topic == "p.prices.v1"]
    return out


def market(n: int = 40) -> list[bytes]:
    """Two venues trading BTC around 100, in event-time order."""
    rows = []
    for i in range(n):
        rows.append(trade("binance", "BTC-USDT", i, i * 0.9, f"{100 + i % 3}"))
        rows.append(trade("kraken", "BTC-USD", i, i * 0.9 + 0.3, f"{101 + i % 2}", "2"))
    return rows


def test_venues_of_an_asset_consolidate_volume_weighted() -> None:
    events = run(core(), market())
    assert events, "intervals closed"
    first = events[0]
    assert (first["kind"], first["symbol"], first["source"]) == (
        "consolidated",
        "BTC-USD",
        "coinstream",
    )
    assert first["contributors"] == ["binance:BTC-USDT", "kraken:BTC-USD"]
    assert first["event_time"] == "2026-03-01T12:00:10.000000Z"


def test_arrival_order_within_the_grace_does_not_change_the_result() -> None:
    """Another replica's venue arriving up to the grace later: the same events, byte for
    byte (ids, prices, contributors and receipt times)."""
    records = market()
    shuffled = records[:]
    rnd = random.Random(5)
    for _ in range(200):  # local swaps: each record moves at most ~1 s of event time
        i = rnd.randrange(len(shuffled) - 1)
        shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
    assert shuffled != records
    assert run(core(), shuffled) == run(core(), records)


def test_a_trade_later_than_the_grace_counts_in_later_windows_only() -> None:
    records = market(30)
    late = trade("coinbase", "BTC-USD", 999, 5.0, "100")  # dated in the first interval
    events = run(core(), [*records[:30], late, *records[30:]])
    first = events[0]
    assert "coinbase:BTC-USD" not in first["contributors"]  # closed before it arrived


def test_what_is_not_a_venue_trade_is_dead_lettered() -> None:
    c = core()
    for value, reason in [
        (None, "tombstone"),
        (b"{", "not a canonical venue trade"),
        (trade("binance", "BTC-USDT", 1, 0, "100").replace(b'"trade"', b'"quote"', 1), "quote"),
    ]:
        out, letter = c.process(TOPIC, 1, 7, b"k", value)
        assert out == [] and letter is not None, value
        assert reason in letter.reason and letter.origin_offset == 7


def test_floor_holds_the_oldest_record_in_an_open_window() -> None:
    c = core()
    run(c, market(5))
    assert c.floor((TOPIC, 0)) == 0
    c.reset()
    assert c.floor((TOPIC, 0)) is None


def test_a_trade_published_twice_counts_once() -> None:
    """A normalize replica re-publishes what was in flight when it restarted."""
    records = market(20)
    twice = records[:10] + records[5:10] + records[10:]
    assert run(core(), twice) == run(core(), records)


def test_grouped_records_count_each_trade_once_whatever_the_grouping() -> None:
    """The engine sends a batch's trades of one asset as a JSON array; a batch re-sent after
    a restart may be grouped differently, and each trade still counts once."""
    records = market(20)
    grouped = [b"[" + b",".join(records[i : i + 7]) + b"]" for i in range(0, 40, 7)]
    regrouped = [b"[" + b",".join(records[i : i + 3]) + b"]" for i in range(0, 21, 3)] + grouped
    assert run(core(), grouped) == run(core(), records) == run(core(), regrouped)


def test_a_bad_element_is_dead_lettered_and_its_neighbours_count() -> None:
    c = core()
    good = market(3)
    value = b"[" + b",".join([good[0], b'{"type":"price"}', good[1]]) + b"]"
    _out, letter = c.process(TOPIC, 0, 1, b"bitcoin", value)
    assert letter is not None and "not a canonical venue trade" in letter.reason
    assert c.dedup.seen(json.loads(good[1])["event_id"])  # the neighbours were accounted
