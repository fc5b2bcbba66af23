"""CoinGecko and CoinMarketCap WebSocket parsers, table-driven over the verbatim frames of
``shared/reference/wire-formats-aggregator-ws.md`` (``support.aggregator_frames``).

Every event is round-tripped through ``decode_event`` (``wire``), so it meets the contract of
``coinstream.schemas.limits``; decimals are compared as the strings subscribers read.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from coinstream.normalizer.core import Normalizer
from coinstream.normalizer.errors import ParseError, UnknownInstrumentError
from coinstream.normalizer.identity import DEFAULT_ASSETS, DEFAULT_POOLS, Asset, Pool, Registry
from coinstream.normalizer.parsers import coingecko_ws, coinmarketcap_ws
from coinstream.normalizer.settings import NormalizerSettings
from coinstream.normalizer.values import fit_decimal
from coinstream.schemas import CandleEvent, PriceEvent, Topics
from support import aggregator_frames as F

from .normalizer_helpers import env, raw, wire

RECEIVED = datetime(2026, 6, 10, 12, 0, 0, 123456, tzinfo=UTC)
"""After every documented frame's own time (the latest is 2026-06-07)."""
USDT_BSC = "0x55d398326f99059ff775485246999027b3197955"
USDC_BSC = "0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d"
REF_POOL = "0x172fcd41e0913e95784454622d1c3724f546f849"
CG, CMC = "coingecko-ws", "coinmarketcap-ws"


def registry() -> Registry:
    """The default registry plus what a deployment would add in NORMALIZER_REGISTRY_FILE for
    the reference's examples: BSC USDC, and the pools the frames name (their tokens assumed)."""
    usdc_bsc = Asset("binance-bridged-usdc", "USDC", "binance-bridged-usdc", None,
                     (("bsc", USDC_BSC),))  # fmt: skip
    pools = (
        Pool("bsc", REF_POOL, USDT_BSC, USDC_BSC),
        Pool("bsc", "0xpool", USDT_BSC, USDC_BSC),
        Pool("ethereum", "0xpool", "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", USDT_BSC),
    )
    return Registry(assets=(*DEFAULT_ASSETS, usdc_bsc), pools=(*DEFAULT_POOLS, *pools))


def parse(
    source: str, channel: str, frame: str, reg: Registry | None = None, **kw: Any
) -> list[Any]:
    module = coingecko_ws if source == CG else coinmarketcap_ws
    kw.setdefault("received_at", RECEIVED)
    events = module.parse(env(source, channel, frame, **kw), reg or registry(), None)
    return [wire(e) for e in events]


def at(seconds: float | str) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        microseconds=int(Decimal(str(seconds)) * 10**6)
    )


def fields(event: Any, names: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for name in names:
        value = getattr(event, name)
        out[name] = format(value, "f") if isinstance(value, Decimal) else value
    return out


AGGREGATE = ("kind", "symbol", "asset_id", "price", "market_cap", "quote_volume_24h",
             "change_24h_pct", "event_time", "network", "contract_address")  # fmt: skip


@pytest.mark.parametrize(
    ("name", "source", "channel", "frame", "expected"),
    [
        ("C1 current", CG, "CGSimplePrice", F.CG_C1, {
            "kind": "aggregate", "symbol": "BTC-USD", "asset_id": "bitcoin", "price": "61696.68",
            "market_cap": "1236047139289.68", "quote_volume_24h": "30595921115.54",
            "change_24h_pct": "1.42", "event_time": at(1780839768), "network": None,
            "contract_address": None}),
        ("C1 older: no vs, float seconds", CG, "CGSimplePrice", F.CG_C1_OLD, {
            "kind": "aggregate", "symbol": "ETH-USD", "asset_id": "ethereum",
            "price": "2591.080889351465", "market_cap": "312938652962.8005",
            "quote_volume_24h": "20460612214.801384", "change_24h_pct": "1.3763793110454519",
            "event_time": at("1747808150.269067"), "network": None, "contract_address": None}),
        ("C1 observed: exponents", CG, "CGSimplePrice", F.CG_C1_CLI, {
            "kind": "aggregate", "symbol": "BTC-USD", "asset_id": "bitcoin", "price": "69982.9",
            "market_cap": "1390000000000", "quote_volume_24h": "46800000000",
            "change_24h_pct": "-0.11", "event_time": at(1773277871), "network": None,
            "contract_address": None}),
        ("G1", CG, "OnchainSimpleTokenPrice", F.CG_G1, {
            "kind": "aggregate", "symbol": "USDT-USD", "asset_id": "tether",
            "price": "1.0002630480973", "market_cap": "9187408426.01",
            "quote_volume_24h": "1999727791.12", "change_24h_pct": "0.04574653488",
            "event_time": at(1780840630), "network": "bsc", "contract_address": USDT_BSC}),
        ("G1 pilot: a token the registry lacks", CG, "OnchainSimpleTokenPrice", F.CG_G1_PILOT, {
            "kind": "aggregate", "symbol": "0X7507C1DC16935B82698E4C63F2746A-USD",
            "asset_id": "dex:berachain-bartio:0x7507c1dc16935b82698e4c63f2746a2fcf994df8",
            "price": "0.999457718373347", "market_cap": "1317802988326.25",
            "quote_volume_24h": "1476864199.38384", "change_24h_pct": "-0.009028866490825653",
            "event_time": at(1737427063), "network": "berachain-bartio",
            "contract_address": "0x7507c1dc16935b82698e4c63f2746a2fcf994df8"}),
        ("CMC market price", CMC, "market@crypto_latest_price", F.CMC_MARKET, {
            "kind": "aggregate", "symbol": "BTC-USD", "asset_id": "bitcoin", "price": "81187.93",
            "market_cap": "1626089237758.01", "quote_volume_24h": "29932025976.79",
            "change_24h_pct": "0.534", "event_time": at("1778663880.111"), "network": None,
            "contract_address": None}),
        ("CMC token price", CMC, "onchain@token_agg_event", F.CMC_AGG, {
            "kind": "aggregate", "symbol": "USDC-USD", "asset_id": "binance-bridged-usdc",
            "price": "0.9998026294970268", "market_cap": None, "quote_volume_24h": None,
            "change_24h_pct": None, "event_time": at("1778659194"), "network": "bsc",
            "contract_address": USDC_BSC}),
    ],
)  # fmt: skip
def test_documented_price_pushes(
    name: str, source: str, channel: str, frame: str, expected: dict[str, Any]
) -> None:
    """Market prices and token prices, exact from JSON numbers, in each channel's time unit."""
    (event,) = parse(source, channel, frame)
    assert isinstance(event, PriceEvent) and event.source == source
    assert fields(event, AGGREGATE) == expected


TRADE = ("kind", "symbol", "asset_id", "size", "quote_size", "side", "network", "pool_address",
         "tx_hash", "event_time", "trade_id")  # fmt: skip


@pytest.mark.parametrize(
    ("name", "source", "channel", "frame", "reg", "expected"),
    [
        ("G2", CG, "OnchainTrade", F.CG_G2, None, {
            "kind": "trade", "symbol": "USDT-USDC", "asset_id": "tether",
            "size": "0.0369078635593666", "quote_size": "0.000062600168318069", "side": "sell",
            "network": "bsc", "pool_address": REF_POOL,
            "tx_hash": "0x3aa702e87ebc87cc4f877ab494afa0ac59f46873c147ee406a546c1e12ab5f57",
            "event_time": at("1780840929.000"), "trade_id": None}),
        ("G2 client fixture: ch, string numbers", CG, "OnchainTrade", F.CG_G2_FIXTURE, None, {
            "kind": "trade", "symbol": "USDT-USDC", "asset_id": "tether", "size": "11.08",
            "quote_size": "0.01", "side": "buy", "network": "bsc", "pool_address": "0xpool",
            "tx_hash": "0xtx", "event_time": at("1724927796.000"), "trade_id": None}),
        ("CMC swap", CMC, "onchain@transaction", F.CMC_TRANSACTION, Registry(), {
            "kind": "trade", "symbol": "USDC-WBNB",
            "asset_id": "dex:bsc:0x5feccd17c393caf1001d18164236a37e731fcb9d",
            "size": "8.581676894301156", "quote_size": "0.9999663716704877", "side": "sell",
            "network": "bsc", "pool_address": "0x2f4a644cd20eb9f45fa166dbb87068697fe8e6e3",
            "tx_hash": "0xade908a367c85915a89719ddce9e95a864bd2c9691bb28c6d6b86d907181f7aa",
            "event_time": at("1778659192"), "trade_id": None}),
    ],
)  # fmt: skip
def test_documented_swaps(
    name: str, source: str, channel: str, frame: str, reg: Registry | None,
    expected: dict[str, Any],
) -> None:  # fmt: skip
    """Swaps in the pool's own terms: both amounts, side, network, pool and transaction; the
    price is the ratio of the amounts (milliseconds on both APIs)."""
    (event,) = parse(source, channel, frame, reg)
    assert isinstance(event, PriceEvent)
    assert fields(event, TRADE) == expected
    assert event.price == fit_decimal(event.quote_size / event.size)
    pool = f"{event.symbol}|{event.network}:{event.pool_address}"  # each pool its own market
    assert event.key == (
        f"{pool}|{event.asset_id}".encode() if ":" in str(event.asset_id) else pool.encode()
    )


CANDLE = ("venue", "symbol", "interval", "open_time", "close_time", "open", "high", "low",
          "close", "quote_volume", "network", "pool_address", "contract_address")  # fmt: skip


@pytest.mark.parametrize(
    ("name", "source", "channel", "frame", "expected"),
    [
        ("G3", CG, "OnchainOHLCV", F.CG_G3, {
            "venue": CG, "symbol": "USDT-USD", "interval": "1m", "open_time": at(1780841100),
            "close_time": at(1780841160), "open": "1.00052534269941",
            "high": "1.00063525778742", "low": "0.999952061655863",
            "close": "0.999952061655863", "quote_volume": "59672.13452671968", "network": "bsc",
            "pool_address": REF_POOL, "contract_address": USDT_BSC}),
        ("G3 client fixture", CG, "OnchainOHLCV", F.CG_G3_FIXTURE, {
            "venue": CG, "symbol": "WETH-USD", "interval": "1m", "open_time": at(1753803600),
            "close_time": at(1753803660), "open": "1.1", "high": "2.2", "low": "0.9",
            "close": "1.8", "quote_volume": "10.5", "network": "ethereum",
            "pool_address": "0xpool",
            "contract_address": "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"}),
        ("CMC kline", CMC, "onchain@kline", F.CMC_KLINE, {
            "venue": CMC, "symbol": "USDC-USD", "interval": "1m",
            "open_time": at("1778649420"), "close_time": at("1778649480"),
            "open": "0.9995980459860556", "high": "0.999729701705", "low": "0.999529767125",
            "close": "0.999677480145", "quote_volume": "3237.47055005272", "network": "bsc",
            "pool_address": None, "contract_address": USDC_BSC}),
    ],
)  # fmt: skip
def test_documented_ohlcv(
    name: str, source: str, channel: str, frame: str, expected: dict[str, Any]
) -> None:
    """Source candles: OHLC and USD volume as sent; what they lack is named in estimated."""
    (candle,) = parse(source, channel, frame)
    assert isinstance(candle, CandleEvent) and candle.source == source
    assert fields(candle, CANDLE) == expected
    assert candle.estimated == ("volume", "vwap", "trade_count") and candle.trade_count == 0
    assert candle.vwap == fit_decimal((candle.high + candle.low + candle.close) / 3)
    assert candle.volume == fit_decimal(candle.quote_volume / candle.vwap)
    assert candle.final  # received days after the close


@pytest.mark.parametrize(
    ("source", "channel", "frame"),
    [
        *[(CG, ch, frame) for ch, frame in [
            ("connected", F.CG_GREETING_CODE), ("welcome", F.CG_WELCOME),
            ("confirm_subscription", F.CG_CONFIRM), ("confirm_subscription", F.CG_CONFIRM_COMPACT),
            ("ack", F.CG_ACK_C1), ("ack", F.CG_ACK_C1_OLD), ("ack", F.CG_ACK_G1),
            ("ack", F.CG_ACK_UNSET_G1), ("ack", F.CG_ACK_UNSET_G3),
            ("ack", F.CG_ACK_UNSUBSCRIBE_TOKENS), ("ack", F.CG_ACK_UNSUBSCRIBE_POOLS),
            ("ping", '{"type":"ping","message":1780839768}'),
        ]],
        (CMC, "ack", F.CMC_ACK),
        (CMC, "pong", F.CMC_PONG),
        (CMC, "pong", F.CMC_PONG_UNTYPED),
        (CMC, "welcome", '{"type":"welcome","ping_interval_ms":10000}'),
    ],
)  # fmt: skip
def test_control_frames_yield_nothing(source: str, channel: str, frame: str) -> None:
    assert parse(source, channel, frame) == []


def test_error_frames_are_dead_lettered_with_their_code() -> None:
    with pytest.raises(ParseError, match="2401"):
        parse(CMC, "error", F.CMC_ERROR)
    with pytest.raises(ParseError, match="4029"):
        parse(CG, "error", '{"code":4029,"message":"limit"}')
    with pytest.raises(ParseError, match=re.escape("channel 'onchain@unique_trader'")):
        parse(CMC, "onchain@unique_trader", F.CMC_UNIQUE_TRADER)


def test_a_pool_the_registry_lacks_is_dead_lettered_with_the_remedy() -> None:
    """CoinGecko's swaps name only the pool: its tokens must come from the registry."""
    with pytest.raises(UnknownInstrumentError, match="NORMALIZER_REGISTRY_FILE") as info:
        parse(CG, "OnchainTrade", F.CG_G2, Registry())
    assert f"bsc:{REF_POOL}" in str(info.value)


def test_null_prices_publish_nothing_and_keys_may_come_in_any_order() -> None:
    for frame, channel in ((F.CG_C1, "CGSimplePrice"), (F.CG_G1, "OnchainSimpleTokenPrice")):
        doc = json.loads(frame)
        doc["p"] = None
        assert parse(CG, channel, json.dumps(doc)) == []
        doc = json.loads(frame)
        doc["m"] = None
        (event,) = parse(CG, channel, json.dumps(dict(reversed(list(doc.items())))))
        assert event.market_cap is None and event.price is not None
    doc = json.loads(F.CG_G3)
    doc["h"] = None
    assert parse(CG, "OnchainOHLCV", json.dumps(doc)) == []


def test_older_g2_without_quote_amount_is_priced_in_usd() -> None:
    doc = json.loads(F.CG_G2)
    del doc["toq"], doc["c"]
    doc["ch"] = "G2"
    (event,) = parse(CG, "OnchainTrade", json.dumps(doc))
    assert (event.symbol, format(event.price, "f")) == ("USDT-USD", "0.998675500314209")
    assert format(event.quote_size, "f") == "0.036858979105679"  # vo: the USD volume


def test_the_same_swap_from_both_token_subscriptions_is_one_event() -> None:
    """CMC pushes a swap to the subscriptions of both its tokens: same event id, and the
    dedup window drops the second."""
    doc = json.loads(F.CMC_TRANSACTION)
    other = json.loads(F.CMC_TRANSACTION)
    other["params"]["address"] = doc["data"]["t0a"]
    (a,) = parse(CMC, "onchain@transaction", json.dumps(doc), Registry())
    (b,) = parse(CMC, "onchain@transaction", json.dumps(other), Registry())
    assert a.event_id == b.event_id and a.to_json() == b.to_json()
    core = Normalizer(NormalizerSettings(), Topics("t"), Registry())
    topic = "t.raw.coinmarketcap-ws.v1"
    key = b"coinmarketcap-ws:14:" + USDC_BSC.encode()
    first, _ = core.process(topic, 0, 0, key, raw(CMC, "onchain@transaction", doc, RECEIVED))
    second, _ = core.process(topic, 0, 1, key, raw(CMC, "onchain@transaction", other, RECEIVED))
    assert len(first) == 1 and second == []


def test_excluded_swaps_are_not_prices() -> None:
    doc = json.loads(F.CMC_TRANSACTION)
    doc["data"]["ex"] = True
    assert parse(CMC, "onchain@transaction", json.dumps(doc), Registry()) == []


def test_solana_swaps_dedupe_on_the_instruction_index() -> None:
    doc = json.loads(F.CMC_TRANSACTION)
    data = doc["data"]
    del data["lgid"]
    data.update(pid=16, iix=3, t0a="So11111111111111111111111111111111111111112",
                t1a="EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", t0s="SOL", t1s="USDC",
                tx="5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW")  # fmt: skip
    (event,) = parse(CMC, "onchain@transaction", json.dumps(doc), Registry())
    assert (event.symbol, event.asset_id, event.network) == (
        "WSOL-USDC",
        "wrapped-solana",
        "solana",
    )
    data["iix"] = 4
    (other,) = parse(CMC, "onchain@transaction", json.dumps(doc), Registry())
    assert other.event_id != event.event_id


def test_tickers_learned_from_swaps_name_tokens_in_price_pushes() -> None:
    """A token the registry lacks gets the ticker a swap gave it, never another token's."""
    reg = Registry()
    parse(CMC, "onchain@transaction", F.CMC_TRANSACTION, reg)
    doc = json.loads(F.CMC_AGG)
    doc["params"]["address"] = doc["data"]["a"] = "0x5feccd17c393caf1001d18164236a37e731fcb9d"
    (event,) = parse(CMC, "onchain@token_agg_event", json.dumps(doc), reg)
    assert event.symbol == "USDC-USD"
    assert event.asset_id == "dex:bsc:0x5feccd17c393caf1001d18164236a37e731fcb9d"
    assert event.key == b"USDC-USD|dex:bsc:0x5feccd17c393caf1001d18164236a37e731fcb9d"


def test_open_candle_updates_are_later_revisions_final_after_the_close() -> None:
    doc = json.loads(F.CG_G3)
    opened = at(doc["t"])
    early = parse(CG, "OnchainOHLCV", F.CG_G3, received_at=opened + timedelta(seconds=5))[0]
    later = parse(CG, "OnchainOHLCV", F.CG_G3, received_at=opened + timedelta(seconds=30))[0]
    after = parse(CG, "OnchainOHLCV", F.CG_G3, received_at=opened + timedelta(seconds=61))[0]
    assert early.event_id == later.event_id == after.event_id
    assert early.revision < later.revision < after.revision
    assert (early.final, later.final, after.final) == (False, False, True)


def test_aggregator_trades_feed_no_candles_or_consolidation() -> None:
    """Their plugins declare no venue trades: DEX swaps priced per pool are published only."""
    core = Normalizer(NormalizerSettings(), Topics("t"), registry())
    topic = "t.raw.coingecko-ws.v1"
    outputs = []
    for i in range(3):
        doc = json.loads(F.CG_G2)
        doc["tx"] = f"0x{i:064x}"
        doc["t"] += i * 70_000
        out, letter = core.process(
            topic, 0, i, b"coingecko-ws:x", raw(CG, "OnchainTrade", doc, RECEIVED)
        )
        assert letter is None
        outputs += out
    assert {o.topic for o in outputs} == {"t.prices.v1"}
