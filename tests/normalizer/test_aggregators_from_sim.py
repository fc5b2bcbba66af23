"""What the simulator's aggregator streams send, classified by the ingest-ws venue (the
envelope channel it publishes) and parsed by the normalizer: every channel, both APIs,
EVM and Solana tokens, into events that pass the contract. No broker: the frames go from
a real WebSocket straight into envelopes."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import websockets

from coinstream.ingest_ws.venues.coingecko_ws import CoinGeckoWsProtocol, CoinGeckoWsSettings
from coinstream.ingest_ws.venues.coinmarketcap_ws import (
    CoinMarketCapWsProtocol,
    CoinMarketCapWsSettings,
)
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.parsers import coingecko_ws, coinmarketcap_ws
from coinstream.schemas import CandleEvent, PriceEvent

from .normalizer_helpers import env, wire

WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
PEPE = "0x6982508145454ce325ddbe47a25d4ec3d2311933"
WSOL = "So11111111111111111111111111111111111111112"
SOL_USDC = "58oQChx4yWmvKdwLLZzBi4ChoCc2fqCUWBkwMihLYQo2"


async def collect(url: str, protocol: Any, headers: dict[str, str], wanted: set[str]) -> list[Any]:
    """(channel, frame) pairs until every wanted channel was seen (at most 20 s)."""
    frames: list[tuple[str, str]] = []
    async with websockets.connect(url, additional_headers=headers) as ws:
        for message in protocol.plan()[0].subscribe:
            await ws.send(message)
        seen: set[str] = set()
        async with asyncio.timeout(20):
            while not wanted <= seen:
                text = await ws.recv()
                channel = protocol.classify(text).channel
                seen.add(channel)
                frames.append((channel, text))
    return frames


def parse_all(module: Any, source: str, frames: list[tuple[str, str]]) -> list[Any]:
    registry = Registry()
    received = datetime.now(UTC)
    events = []
    for channel, text in frames:
        events += [
            wire(e)
            for e in module.parse(env(source, channel, text, received_at=received), registry, None)
        ]
    return events


async def test_coingecko_stream_from_the_simulator_parses_in_every_channel() -> None:
    settings = CoinGeckoWsSettings(
        enabled=True, api_key="k", coin_ids=["bitcoin", "solana"], tokens=[f"eth:{WETH}", f"solana:{WSOL}"],
        pools=["eth:0xa43fe16908251ee70ef74718545e4fe6c5ccec9f", f"solana:{SOL_USDC}"],
        ohlcv_intervals=["1s"], ohlcv_tokens=["base", "quote"],
    )  # fmt: skip
    wanted = {"CGSimplePrice", "OnchainSimpleTokenPrice", "OnchainTrade", "OnchainOHLCV"}
    async with SimServer(Market(rate=40, seed=71)) as server:
        server.sim.faults.update(
            {"coingecko-ws.c1_interval_s": 0.2, "coingecko-ws.g3_interval_s": 0.2}
        )
        settings.url = f"{server.ws_url}/coingecko-ws/v1"
        protocol = CoinGeckoWsProtocol(settings)
        frames = await collect(settings.url, protocol, {"x-cg-pro-api-key": "k"}, wanted)
    events = parse_all(coingecko_ws, "coingecko-ws", frames)
    kinds = Counter(
        (type(e).__name__, getattr(e, "kind", None), e.network if hasattr(e, "network") else None)
        for e in events
    )
    assert ("PriceEvent", "aggregate", None) in kinds  # C1
    assert ("PriceEvent", "aggregate", "ethereum") in kinds  # G1
    assert ("PriceEvent", "trade", "ethereum") in kinds or (
        "PriceEvent",
        "trade",
        "solana",
    ) in kinds
    assert any(isinstance(e, CandleEvent) and e.venue == "coingecko-ws" for e in events)
    symbols = {e.symbol for e in events if isinstance(e, PriceEvent)}
    assert {"BTC-USD", "WETH-USD"} <= symbols
    trades = [e for e in events if isinstance(e, PriceEvent) and e.kind == "trade"]
    assert {t.symbol for t in trades} <= {"PEPE-WETH", "WSOL-USDC"}
    assert all(t.quote_size and t.tx_hash and t.pool_address for t in trades)


async def test_coinmarketcap_stream_from_the_simulator_parses_in_every_channel() -> None:
    settings = CoinMarketCapWsSettings(
        enabled=True, api_key="k", crypto_ids=[1, 5426],
        tokens=[f"1:{PEPE}", f"1:{WETH}", f"16:{WSOL}"], kline_intervals=["1s"],
    )  # fmt: skip
    wanted = {"market@crypto_latest_price", "onchain@token_agg_event", "onchain@transaction",
              "onchain@kline"}  # fmt: skip
    async with SimServer(Market(rate=40, seed=72)) as server:
        server.sim.faults["coinmarketcap-ws.market_interval_s"] = 0.2
        settings.url = f"{server.ws_url}/coinmarketcap-ws/v1"
        protocol = CoinMarketCapWsProtocol(settings)
        frames = await collect(settings.url, protocol, {"X-CMC_PRO_API_KEY": "k"}, wanted)
    events = parse_all(coinmarketcap_ws, "coinmarketcap-ws", frames)
    prices = [e for e in events if isinstance(e, PriceEvent)]
    assert {("BTC-USD", "bitcoin"), ("SOL-USD", "solana")} & {
        (p.symbol, p.asset_id) for p in prices
    }
    tokens = {(p.symbol, p.network) for p in prices if p.kind == "aggregate" and p.network}
    assert tokens & {("PEPE-USD", "ethereum"), ("WETH-USD", "ethereum"), ("WSOL-USD", "solana")}
    trades = [p for p in prices if p.kind == "trade"]
    assert trades and all(t.tx_hash and t.quote_size for t in trades)
    ids = Counter(t.event_id for t in trades)
    swaps = [json.loads(text)["data"]["tx"] for ch, text in frames if ch == "onchain@transaction"]
    assert len(ids) == len(set(swaps))  # a swap pushed for both tokens is one event
    assert any(isinstance(e, CandleEvent) and e.venue == "coinmarketcap-ws" for e in events)
