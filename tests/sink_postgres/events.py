"""Canonical test events built with the schema models (shared by the sink-postgres tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from coinstream.schemas import (
    AlertEvent,
    AssetMetadataEvent,
    CandleEvent,
    FeedStatusEvent,
    PriceEvent,
    SentimentEvent,
    ServiceHealthEvent,
    deterministic_id,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def trade(
    i: int,
    *,
    symbol: str = "BTC-USDT",
    source: str = "binance",
    price: str | Decimal = "64000.5",
    size: str = "0.01",
    revision: int = 0,
    **kw: Any,
) -> PriceEvent:
    """Trade number ``i``: a distinct event id and event time per ``i``."""
    base, quote = symbol.split("-")
    t = T0 + timedelta(milliseconds=i)
    return PriceEvent(
        event_id=deterministic_id("trade", source, symbol, i),
        event_time=t,
        received_at=t + timedelta(milliseconds=5),
        source=source,
        kind="trade",
        symbol=symbol,
        base=base,
        quote=quote,
        native_symbol=symbol.replace("-", ""),
        price=Decimal(price),
        size=Decimal(size),
        side="buy" if i % 2 else "sell",
        trade_id=str(i),
        revision=revision,
        **kw,
    )


def quote(i: int, *, symbol: str = "BTC-USDT", source: str = "binance") -> PriceEvent:
    base, q = symbol.split("-")
    t = T0 + timedelta(milliseconds=i)
    return PriceEvent(
        event_id=deterministic_id("quote", source, symbol, i),
        event_time=t,
        received_at=t,
        source=source,
        kind="quote",
        symbol=symbol,
        base=base,
        quote=q,
        bid=Decimal("63999.9"),
        bid_size=Decimal("1.5"),
        ask=Decimal("64000.1"),
        ask_size=Decimal("2"),
    )


def consolidated(i: int, symbol: str = "BTC-USD") -> PriceEvent:
    base, q = symbol.split("-")
    t = T0 + timedelta(seconds=i)
    return PriceEvent(
        event_id=deterministic_id("consolidated", symbol, i),
        event_time=t,
        received_at=t,
        source="coinstream",
        kind="consolidated",
        symbol=symbol,
        base=base,
        quote=q,
        price=Decimal("64001.25"),
        contributors=("binance", "coinbase"),
    )


def candle(
    minute: int,
    *,
    revision: int = 0,
    close: str = "101",
    final: bool = False,
    high: str = "105",
    low: str = "99",
    venue: str = "binance",
    symbol: str = "BTC-USDT",
) -> CandleEvent:
    open_time = T0 + timedelta(minutes=minute)
    return CandleEvent(
        event_id=deterministic_id("candle", venue, symbol, "1m", open_time.isoformat()),
        event_time=open_time,
        received_at=open_time + timedelta(minutes=1),
        source="coinstream",
        venue=venue,
        symbol=symbol,
        open_time=open_time,
        close_time=open_time + timedelta(minutes=1),
        open=Decimal("100"),
        high=Decimal(high),
        low=Decimal(low),
        close=Decimal(close),
        volume=Decimal("3"),
        quote_volume=Decimal("300"),
        vwap=Decimal("100"),
        trade_count=7 + revision,
        revision=revision,
        final=final,
    )


def sentiment(i: int, value: str = "25", classification: str = "Extreme Fear") -> SentimentEvent:
    t = T0 + timedelta(days=i)
    return SentimentEvent(
        event_id=deterministic_id("sentiment", "feargreed", "market", "fear_greed", i),
        event_time=t,
        received_at=t,
        source="feargreed",
        subject="market",
        metric="fear_greed",
        value=Decimal(value),
        classification=classification,
    )


def asset(
    minute: int, *, name: str = "Bitcoin", description: str = "Peer-to-peer cash", revision: int = 0
) -> AssetMetadataEvent:
    t = T0 + timedelta(minutes=minute)
    return AssetMetadataEvent(
        event_id=deterministic_id("metadata", "coingecko", "asset:bitcoin", t.isoformat()),
        event_time=t,
        received_at=t,
        source="coingecko",
        entity="asset",
        entity_id="asset:bitcoin",
        name=name,
        symbol="BTC",
        slug="bitcoin",
        description=description,
        categories=("Layer 1",),
        source_ids={"coingecko": "bitcoin"},
        links={"homepage": ("https://bitcoin.org",)},
        circulating_supply=Decimal("19700000"),
        revision=revision,
    )


def exchange() -> AssetMetadataEvent:
    return AssetMetadataEvent(
        event_id=deterministic_id("metadata", "coingecko", "exchange:binance"),
        event_time=T0,
        received_at=T0,
        source="coingecko",
        entity="exchange",
        entity_id="exchange:binance",
        name="Binance",
        country="Cayman Islands",
        year_established=2017,
        trust_score=Decimal("10"),
    )


def dex_pair() -> AssetMetadataEvent:
    return AssetMetadataEvent(
        event_id=deterministic_id("metadata", "cmc-dex", "dex_pair:ethereum:0xabc"),
        event_time=T0,
        received_at=T0,
        source="cmc-dex",
        entity="dex_pair",
        entity_id="dex_pair:ethereum:0xabc",
        name="PEPE/WETH",
        network="ethereum",
        dex="uniswap-v3",
        contract_address="0xabc",
        base_asset_id="pepe",
        quote_asset_id="weth",
    )


def instrument() -> AssetMetadataEvent:
    return AssetMetadataEvent(
        event_id=deterministic_id("metadata", "kraken", "instrument:kraken:BTC-USD"),
        event_time=T0,
        received_at=T0,
        source="kraken",
        entity="instrument",
        entity_id="instrument:kraken:BTC-USD",
        symbol="BTC-USD",
        source_ids={"kraken": "XBT/USD"},
        base_asset_id="bitcoin",
        quote_asset_id="usd",
    )


def feed_status(i: int) -> FeedStatusEvent:
    t = T0 + timedelta(seconds=i)
    return FeedStatusEvent(
        event_id=deterministic_id("feed", "binance", i),
        event_time=t,
        received_at=t,
        source="binance",
        status="gap",
        symbol="BTC-USDT",
        window_start=t - timedelta(seconds=3),
        window_end=t,
        cause="sequence gap",
        details={"missing": 3},
    )


def health(i: int) -> ServiceHealthEvent:
    t = T0 + timedelta(seconds=i)
    return ServiceHealthEvent(
        event_id=deterministic_id("health", "normalizer", "n1", i),
        event_time=t,
        received_at=t,
        source="normalizer",
        service="normalizer",
        instance="n1",
        status="ready",
        checks={"kafka": "ok"},
        counters={"records": i},
    )


def alert(i: int, status: str = "firing") -> AlertEvent:
    t = T0 + timedelta(seconds=i)
    return AlertEvent(
        event_id=deterministic_id("alert", "btc-high", status, i),
        event_time=t,
        received_at=t,
        source="alerts",
        fingerprint="btc-high:BTC-USDT",
        rule_id="btc-high",
        rule_type="price_threshold",
        status=status,  # type: ignore[arg-type]
        severity="critical",
        subject="BTC-USDT",
        summary="BTC-USDT above 69000",
        labels={"symbol": "BTC-USDT"},
        value=Decimal("69001"),
        threshold=Decimal("69000"),
        receivers=("slack",),
    )
