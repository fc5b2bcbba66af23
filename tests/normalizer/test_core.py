"""The shared core: routing to topics, dedup, dead letters and the commit floor."""

from __future__ import annotations

import json

from coinstream.normalizer.core import Normalizer
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.settings import NormalizerSettings
from coinstream.schemas import Topics

from .normalizer_helpers import binance_trade, raw

T0 = 1_712_508_600_000
TOPIC = "p.raw.binance.v1"


def core(**kw: object) -> Normalizer:
    return Normalizer(NormalizerSettings(**kw), Topics("p"), Registry())  # type: ignore[arg-type]


def trade(i: int, t_ms: int, price: str = "100") -> bytes:
    return raw("binance", "btcusdt@trade", binance_trade("BTCUSDT", i, price, "1", t_ms))


def test_duplicate_trade_is_dropped_within_window() -> None:
    n = core()
    out1, _ = n.process(TOPIC, 0, 0, b"binance:BTC-USDT", trade(1, T0))
    out2, _ = n.process(TOPIC, 0, 1, b"binance:BTC-USDT", trade(1, T0))
    assert [o.topic for o in out1] == [
        "p.prices.v1",
        "p.metadata.v1",
        "p.normalizer.trades-by-asset.v1",
    ]
    assert out2 == []
    assert n.stats["misc"]["duplicates"] == 1


def test_each_venue_instrument_is_announced_once_as_an_entity() -> None:
    """The first valid price of an instrument publishes its entity on the metadata topic
    (keyed by entity id); later prices do not, and a refused record announces nothing."""
    n = core()
    refused, letter = n.process(TOPIC, 0, 0, b"binance:BTC-USDT", b'{"nonsense"')
    assert refused == [] and letter is not None
    out, _ = n.process(TOPIC, 0, 1, b"binance:BTC-USDT", trade(1, T0))
    meta = [o for o in out if o.topic == "p.metadata.v1"]
    assert len(meta) == 1 and meta[0].key == b"instrument:binance:BTCUSDT"
    entity = json.loads(meta[0].value)
    assert (entity["entity"], entity["symbol"], entity["base_asset_id"]) == (
        "instrument",
        "BTC-USDT",
        "bitcoin",
    )
    assert entity["quote_asset_id"] == "tether"
    assert entity["attributes"] == {
        "venue": "binance",
        "native_symbol": "BTCUSDT",
        "base": "BTC",
        "quote": "USDT",
    }
    again, _ = n.process(TOPIC, 0, 2, b"binance:BTC-USDT", trade(2, T0 + 1))
    assert [o.topic for o in again if o.topic == "p.metadata.v1"] == []


def test_trades_produce_candles_and_go_to_consolidation_keyed_by_asset() -> None:
    """Trades become prices and candles here; the same trade bytes go to the internal
    trades-by-asset topic, keyed by asset, for the consolidate role."""
    n = core()
    outs = []
    for i, t in enumerate([0, 30_000, 61_000]):
        out, _ = n.process(TOPIC, 0, i, b"binance:BTC-USDT", trade(i, T0 + t))
        outs += out
    topics = [o.topic for o in outs]
    assert topics.count("p.candles.v1") == 1
    assert topics.count("p.prices.v1") == 3  # the trades; consolidation is another stage
    by_asset = [o for o in outs if o.topic == "p.normalizer.trades-by-asset.v1"]
    prices = [o for o in outs if o.topic == "p.prices.v1"]
    assert [o.key for o in by_asset] == [b"bitcoin"] * 3
    assert [o.value for o in by_asset] == [o.value for o in prices]


def test_consolidation_off_publishes_no_trades_by_asset() -> None:
    n = core(consolidated={"enabled": False})
    out, _ = n.process(TOPIC, 0, 0, b"binance:BTC-USDT", trade(1, T0))
    assert "p.normalizer.trades-by-asset.v1" not in [o.topic for o in out]


def test_bad_records_become_dead_letters_with_origin() -> None:
    n = core()
    out, letter = n.process(TOPIC, 2, 41, b"k", b"\xff not json")
    assert out == [] and letter is not None
    assert (letter.origin_topic, letter.origin_partition, letter.origin_offset) == (TOPIC, 2, 41)
    assert "not a raw envelope" in letter.reason
    _, unknown = n.process(TOPIC, 0, 1, None, raw("nosuchsource", "x", "{}"))
    assert unknown is not None and "no parser" in unknown.reason


def test_commit_offset_never_passes_records_feeding_open_state() -> None:
    n = core(dedup_window=0, consolidated={"enabled": False})
    n.process(TOPIC, 0, 0, None, trade(0, T0))
    n.process(TOPIC, 0, 1, None, trade(1, T0 + 30_000))
    assert n.commit_offset((TOPIC, 0), 2) == 0  # the open minute starts at offset 0
    n.process(TOPIC, 0, 2, None, trade(2, T0 + 61_000))  # closes (not final) minute 0
    assert n.commit_offset((TOPIC, 0), 3) == 0
    n.process(TOPIC, 0, 3, None, trade(3, T0 + 71_000))  # final: minute 0 released
    assert n.commit_offset((TOPIC, 0), 4) == 2
    assert n.commit_offset((TOPIC, 1), 7) == 7  # nothing held for another partition


def test_heartbeats_are_ignored_without_dead_letter() -> None:
    n = core()
    out, letter = n.process(
        "p.raw.kraken.v1", 0, 0, None, raw("kraken", "heartbeat", '{"channel":"heartbeat"}')
    )
    assert out == [] and letter is None and n.stats["misc"]["ignored"] == 1
