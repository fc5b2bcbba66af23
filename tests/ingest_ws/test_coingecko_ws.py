"""The CoinGecko WebSocket venue without I/O: commands, sharding, every documented frame."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coinstream.ingest_ws.errors import ConfigError
from coinstream.ingest_ws.frames import CONTROL, DATA, ERROR, FATAL, HEARTBEAT, UNKNOWN
from coinstream.ingest_ws.venues import protocols
from coinstream.ingest_ws.venues.coingecko_ws import (
    C1,
    G1,
    G2,
    G3,
    CoinGeckoWsProtocol,
    CoinGeckoWsSettings,
)
from support import aggregator_frames as F

POOL = "bsc:0x172fcd41e0913e95784454622d1c3724f546f849"


def cg(**kw: Any) -> CoinGeckoWsProtocol:
    kw.setdefault("api_key", "k-123")
    return CoinGeckoWsProtocol(CoinGeckoWsSettings(enabled=True, url="ws://sim/cg/v1", **kw))


def test_registered_as_a_plugin_named_like_its_raw_topic() -> None:
    assert protocols()["coingecko-ws"] is CoinGeckoWsProtocol


def test_commands_are_byte_for_byte_the_documented_ones() -> None:
    """identifier and data are JSON strings inside the JSON, exactly as the docs write them."""
    (plan,) = cg(coin_ids=["bitcoin"], channels=["C1"]).plan()
    assert plan.subscribe == (F.CG_SUBSCRIBE_C1, F.CG_SET_C1)
    (plan,) = cg(
        coin_ids=[], channels=["G1", "G2"], tokens=["bsc:0x55d398326f99059ff775485246999027b3197955"],
        pools=[POOL],
    ).plan()  # fmt: skip
    assert plan.subscribe[:2] == (F.CG_SUBSCRIBE_G1, F.CG_SET_G1)
    assert plan.subscribe[3] == F.CG_SET_G2


def test_ohlcv_set_pools_has_the_documented_shape() -> None:
    (plan,) = cg(
        coin_ids=[], channels=["G3"], pools=["eth:0xc7bbec68d12a0d1830360f8ec58fa599ba1b0e9b"]
    ).plan()
    documented_unset = F.CG_UNSET_G3
    assert plan.subscribe[1] == documented_unset.replace("unset_pools", "set_pools")
    assert plan.streams == ((G3, "eth:0xc7bbec68d12a0d1830360f8ec58fa599ba1b0e9b:1m:base"),)


def test_the_key_goes_in_the_header_or_the_query() -> None:
    (plan,) = cg().plan()
    assert plan.headers == {"x-cg-pro-api-key": "k-123"} and plan.url == "ws://sim/cg/v1"
    (plan,) = cg(key_in="query").plan()
    assert plan.headers == {} and plan.url == "ws://sim/cg/v1?x_cg_pro_api_key=k-123"


def test_a_missing_key_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="INGEST_WS_COINGECKO_WS__API_KEY"):
        cg(api_key=None)
    CoinGeckoWsProtocol(CoinGeckoWsSettings())  # disabled by default: no key needed


def test_bad_targets_intervals_and_sides_name_their_variable() -> None:
    with pytest.raises(ConfigError, match="INGEST_WS_COINGECKO_WS__POOLS"):
        cg(pools=["0x172fcd41e0913e95784454622d1c3724f546f849"])
    with pytest.raises(ConfigError, match="INGEST_WS_COINGECKO_WS__OHLCV_INTERVALS"):
        cg(ohlcv_intervals=["3m"])
    with pytest.raises(ConfigError, match="INGEST_WS_COINGECKO_WS__OHLCV_TOKENS"):
        cg(ohlcv_tokens=["both"])


def test_subscriptions_shard_at_100_per_channel_per_socket() -> None:
    coins = [f"coin-{i}" for i in range(250)]
    pools = [f"eth:0x{i:040x}" for i in range(60)]
    plans = cg(coin_ids=coins, pools=pools, ohlcv_intervals=["1m", "5m"]).plan()
    assert len(plans) == 3
    per_channel = [[s[0] for s in p.streams] for p in plans]
    assert [c.count(C1) for c in per_channel] == [100, 100, 50]
    assert [c.count(G2) for c in per_channel] == [60, 0, 0]
    assert [c.count(G3) for c in per_channel] == [100, 20, 0]  # pool x interval x side
    sets = [json.loads(json.loads(m)["data"]) for m in plans[2].subscribe if '"message"' in m]
    assert sets == [{"coin_id": coins[200:], "vs_currencies": ["usd"], "action": "set_tokens"}]


def test_each_coin_counts_once_per_vs_currency() -> None:
    coins = [f"coin-{i}" for i in range(60)]
    plans = cg(coin_ids=coins, vs_currencies=["usd", "eur"]).plan()
    assert [sum(1 for s in p.streams if s[0] == C1) for p in plans] == [50, 10]


def test_more_connections_than_the_key_allows_fail_at_start_up() -> None:
    with pytest.raises(ConfigError, match="INGEST_WS_COINGECKO_WS__MAX_CONNECTIONS"):
        cg(coin_ids=[f"c{i}" for i in range(1001)]).plan()


def test_resubscribing_after_a_reconnect_sends_the_same_commands() -> None:
    p = cg(pools=[POOL])
    assert p.plan()[0].subscribe == p.plan()[0].subscribe


@pytest.mark.parametrize("name", sorted(F.CG_CONTROL))
def test_every_documented_control_frame_is_control(name: str) -> None:
    assert cg().classify(F.CG_CONTROL[name]).kind == CONTROL


def test_pings_are_heartbeats_whatever_their_body() -> None:
    p = cg()
    assert p.classify('{"type":"ping","message":1780839768}').kind == HEARTBEAT
    assert p.classify('{"type":"ping"}').kind == HEARTBEAT


@pytest.mark.parametrize(
    ("frame", "channel", "symbol", "stream", "exchange_ms"),
    [
        (F.CG_C1, C1, "bitcoin", "bitcoin", 1780839768000),
        (F.CG_C1_OLD, C1, "ethereum", "ethereum", 1747808150269),
        (F.CG_C1_CLI, C1, "bitcoin", "bitcoin", 1773277871000),
        (F.CG_G1, G1, "bsc:0x55d398326f99059ff775485246999027b3197955", None, 1780840630000),
        (F.CG_G1_PILOT, G1, "berachain-bartio:0x7507c1dc16935b82698e4c63f2746a2fcf994df8",
         None, 1737427063000),
        (F.CG_G2, G2, POOL, None, 1780840929000),
        (F.CG_G2_FIXTURE, G2, "bsc:0xpool", None, 1724927796000),
        (F.CG_G3, G3, POOL, f"{POOL}:1m:base", 1780841100000),
        (F.CG_G3_FIXTURE, G3, "eth:0xpool", "eth:0xpool:1m:base", 1753803600000),
    ],
)  # fmt: skip
def test_every_documented_push_is_data_keyed_by_its_target(
    frame: str, channel: str, symbol: str, stream: str | None, exchange_ms: int
) -> None:
    """Seconds everywhere but G2 (milliseconds); G3's channel code is ``ch``."""
    f = cg().classify(frame)
    assert (f.kind, f.channel, f.symbol) == (DATA, channel, symbol)
    assert f.streams == ((channel, stream or symbol),)
    assert f.exchange_ms == exchange_ms


def test_pushes_without_a_channel_code_are_recognised_by_their_keys() -> None:
    p = cg()
    for frame, channel in ((F.CG_C1, C1), (F.CG_G1, G1), (F.CG_G2, G2), (F.CG_G3, G3)):
        doc = json.loads(frame)
        doc.pop("ch" if channel == G3 else "c")
        assert p.classify(json.dumps(doc)).channel == channel


def test_null_fields_and_any_key_order_are_accepted() -> None:
    doc = json.loads(F.CG_G1)
    doc.update(p=None, m=None, t=None)
    f = cg().classify(json.dumps(dict(reversed(list(doc.items())))))
    assert (f.kind, f.symbol, f.exchange_ms) == (
        DATA,
        "bsc:0x55d398326f99059ff775485246999027b3197955",
        None,
    )


def test_rejections_errors_and_disconnects() -> None:
    p = cg()
    reject = '{"type":"reject_subscription","identifier":"{\\"channel\\":\\"OnchainTrade\\"}"}'
    assert p.classify(reject).kind == ERROR
    assert p.classify('{"code":4029,"message":"Subscription limit reached"}').kind == ERROR
    final = p.classify('{"type":"disconnect","reason":"unauthorized","reconnect":false}')
    assert final.kind == FATAL and "unauthorized" in final.detail
    assert p.classify('{"type":"disconnect","reason":"restart","reconnect":true}').kind == CONTROL
    assert p.classify('{"c":"G1","n":"bsc","ta":').kind == UNKNOWN


def test_a_refused_key_stops_for_good_other_refusals_retry() -> None:
    p = cg()
    assert "INGEST_WS_COINGECKO_WS__API_KEY" in (p.refused(401) or "")
    assert p.refused(503) is None and p.final_close(1011, "") is None


def test_ohlcv_candles_are_a_sequence_but_their_updates_are_not_duplicates() -> None:
    """The open candle is pushed again and again: only a new candle is a sequence point, so a
    skipped candle is a gap and an update is never dropped as a duplicate."""
    p = cg()
    doc = json.loads(F.CG_G3)
    first = p.classify(json.dumps(doc)).seq
    again = p.classify(json.dumps({**doc, "c": 1.001})).seq
    doc["t"] += 120  # two intervals later: one candle skipped
    after = p.classify(json.dumps(doc)).seq
    key = f"{G3}:{POOL}:1m:base"
    assert first == ((key, 1780841100 // 60),) and again == ()
    assert after == ((key, 1780841100 // 60 + 2),)
    assert "candle" in p.sequence_name(G3)
