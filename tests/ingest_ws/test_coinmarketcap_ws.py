"""The CoinMarketCap WebSocket venue without I/O: subscriptions, limits, every documented frame."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coinstream.ingest_ws.errors import ConfigError
from coinstream.ingest_ws.frames import CONTROL, DATA, ERROR, FATAL, PONG, UNKNOWN
from coinstream.ingest_ws.venues import protocols
from coinstream.ingest_ws.venues.coinmarketcap_ws import (
    AGG,
    KLINE,
    MARKET,
    SWAPS,
    CoinMarketCapWsProtocol,
    CoinMarketCapWsSettings,
)
from support import aggregator_frames as F

USDC_BSC = "0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d"


def cmc(**kw: Any) -> CoinMarketCapWsProtocol:
    kw.setdefault("api_key", "cmc-key")
    return CoinMarketCapWsProtocol(
        CoinMarketCapWsSettings(enabled=True, url="ws://sim/cmc/v1", **kw)
    )


def test_registered_as_a_plugin_named_like_its_raw_topic() -> None:
    assert protocols()["coinmarketcap-ws"] is CoinMarketCapWsProtocol


def test_subscribe_frames_carry_what_the_documented_ones_do() -> None:
    (plan,) = cmc(crypto_ids=[1, 1027, 1839], channels=[MARKET]).plan()
    assert [json.loads(m) for m in plan.subscribe] == [json.loads(F.CMC_SUBSCRIBE_MARKET)]
    (plan,) = cmc(crypto_ids=[], channels=[KLINE], tokens=[f"14:{USDC_BSC}"]).plan()
    sent = json.loads(plan.subscribe[0])
    documented = json.loads(F.CMC_SUBSCRIBE_KLINE)
    assert {k: v for k, v in sent.items() if k != "id"} == {
        k: v for k, v in documented.items() if k != "id"
    }
    assert plan.streams == ((KLINE, f"14:{USDC_BSC}:1m"),)


def test_the_key_goes_in_the_documented_header() -> None:
    (plan,) = cmc().plan()
    assert plan.headers == {"X-CMC_PRO_API_KEY": "cmc-key"}
    assert "cmc-key" not in plan.url


def test_missing_key_and_bad_targets_name_their_variable() -> None:
    with pytest.raises(ConfigError, match="INGEST_WS_COINMARKETCAP_WS__API_KEY"):
        cmc(api_key=None)
    with pytest.raises(ConfigError, match="INGEST_WS_COINMARKETCAP_WS__TOKENS"):
        cmc(tokens=["bsc:0xabc"])
    with pytest.raises(ConfigError, match="INGEST_WS_COINMARKETCAP_WS__KLINE_INTERVALS"):
        cmc(kline_intervals=["hourly"])


def test_subscriptions_shard_at_100_per_connection() -> None:
    """Each id or address counts as one subscription (conservative: the docs are silent)."""
    tokens = [f"14:0x{i:040x}" for i in range(40)]
    plans = cmc(crypto_ids=list(range(1, 61)), tokens=tokens).plan()
    counts = []
    for plan in plans:
        n = 0
        for m in plan.subscribe:
            params = json.loads(m)["params"]
            n += len(params.get("crypto_ids") or params.get("address"))
        counts.append(n)
    assert counts == [100, 80]  # 60 ids + 40 tokens x (agg, swaps, kline)
    assert sum(len(p.streams) for p in plans) == 180


def test_more_connections_than_allowed_fail_at_start_up() -> None:
    with pytest.raises(ConfigError, match="INGEST_WS_COINMARKETCAP_WS__MAX_CONNECTIONS"):
        cmc(crypto_ids=list(range(1, 1002)), channels=[MARKET]).plan()


def test_application_pings_have_ids() -> None:
    p = cmc()
    first, second = json.loads(p.app_ping() or ""), json.loads(p.app_ping() or "")
    assert first["method"] == "ping" and second["id"] > first["id"]


def test_acks_pongs_welcome_and_errors() -> None:
    p = cmc()
    ack = p.classify(F.CMC_ACK)
    assert (ack.kind, ack.subscriptions) == (CONTROL, 1)
    dup = p.classify(
        '{"type":"ack","id":3,"code":0,"duplicate":true,"sub_count":1,"sub_limit":100}'
    )
    assert dup.kind == CONTROL
    assert p.classify(F.CMC_PONG).kind == PONG
    assert p.classify(F.CMC_PONG_UNTYPED).kind == PONG  # the untyped variant one client saw
    assert p.classify('{"type":"welcome","ping_interval_ms":10000}').kind == CONTROL
    err = p.classify(F.CMC_ERROR)
    assert err.kind == ERROR and "2401" in err.detail and "crypto_ids" in err.detail
    assert p.classify("not json").kind == UNKNOWN


@pytest.mark.parametrize(
    ("code", "kind"),
    [("1001", FATAL), ("1002", FATAL), ("1006", FATAL), ("1010", FATAL), (1007, FATAL),
     ("2303", ERROR), ("2304", ERROR), ("2301", ERROR), ("5001", ERROR)],
)  # fmt: skip
def test_auth_errors_stop_protocol_errors_are_reported(code: object, kind: str) -> None:
    doc = json.loads(F.CMC_ERROR)
    doc["status"]["error_code"] = code
    assert cmc().classify(json.dumps(doc)).kind == kind


@pytest.mark.parametrize(
    ("code", "final"),
    [(4100, True), (4101, True), (4102, True), (4004, False), (1000, False), (1001, False),
     (1011, False), (1012, False), (1013, False), (1014, False), (None, False)],
)  # fmt: skip
def test_close_codes_as_documented(code: int | None, final: bool) -> None:
    """A bad key or plan stops the shard; idle timeouts, send failures and too many
    connections reconnect with backoff."""
    assert (cmc().final_close(code, "") is not None) is final


@pytest.mark.parametrize(
    ("frame", "channel", "symbol", "stream"),
    [
        (F.CMC_MARKET, MARKET, "1", "1"),
        (F.CMC_AGG, AGG, f"14:{USDC_BSC}", f"14:{USDC_BSC}"),
        (F.CMC_TRANSACTION, SWAPS, f"14:{USDC_BSC}", f"14:{USDC_BSC}"),
        (F.CMC_KLINE, KLINE, f"14:{USDC_BSC}", f"14:{USDC_BSC}:1m"),
        (F.CMC_UNIQUE_TRADER, "onchain@unique_trader", f"14:{USDC_BSC}", f"14:{USDC_BSC}"),
    ],
)
def test_every_documented_push_is_data_keyed_by_its_target(
    frame: str, channel: str, symbol: str, stream: str
) -> None:
    f = cmc().classify(frame)
    assert (f.kind, f.channel, f.symbol, f.streams) == (DATA, channel, symbol, ((channel, stream),))
    assert f.exchange_ms is not None and f.exchange_ms > 1_700_000_000_000  # milliseconds


def test_untagged_on_chain_pushes_are_recognised_by_their_keys() -> None:
    """A client reports pushes without ``channel``: route by shape when it is missing."""
    p = cmc()
    for frame, channel in ((F.CMC_AGG, AGG), (F.CMC_TRANSACTION, SWAPS), (F.CMC_KLINE, KLINE),
                           (F.CMC_MARKET, MARKET)):  # fmt: skip
        doc = json.loads(frame)
        del doc["channel"]
        assert p.classify(json.dumps(doc)).channel == channel


def test_klines_are_a_sequence_of_candles() -> None:
    p = cmc()
    doc = json.loads(F.CMC_KLINE)
    first = p.classify(json.dumps(doc)).seq
    assert p.classify(json.dumps(doc)).seq == ()  # the same candle again is no new point
    doc["data"]["ot"] += 180_000
    key = f"{KLINE}:14:{USDC_BSC}:1m"
    assert first == ((key, 1778649420000 // 60_000),)
    assert p.classify(json.dumps(doc)).seq == ((key, 1778649420000 // 60_000 + 3),)
