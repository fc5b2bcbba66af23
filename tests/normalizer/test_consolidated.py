"""Consolidated price: volume-weighted across venues, stale venues and outliers excluded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from coinstream.normalizer.consolidated import Consolidator
from coinstream.schemas import PriceEvent

T0 = datetime(2024, 4, 7, 16, 50, tzinfo=UTC)


def add(
    c: Consolidator, venue: str, symbol: str, t: float, price: str, size: str, offset: int = 0
) -> list[PriceEvent]:
    base, quote = symbol.split("-")
    when = T0 + timedelta(seconds=t)
    return c.add(
        venue,
        symbol,
        base,
        quote,
        "bitcoin",
        when,
        Decimal(price),
        Decimal(size),
        when,
        (venue, 0),
        offset,
    )


def test_volume_weighted_across_venues_with_equivalent_quotes() -> None:
    c = Consolidator(interval_s=10, window_s=60, stale_after_s=30, outlier_pct=Decimal(5))
    add(c, "binance", "BTC-USDT", 1, "100", "3")
    add(c, "coinbase", "BTC-USD", 2, "102", "1")
    [event] = add(c, "binance", "BTC-USDT", 11, "101", "1")
    assert (event.kind, event.symbol, event.asset_id, event.source) == (
        "consolidated",
        "BTC-USD",
        "bitcoin",
        "coinstream",
    )
    assert event.price == Decimal("100.5")  # (300 + 102) / 4
    assert event.size == Decimal(4)
    assert event.contributors == ("binance:BTC-USDT", "coinbase:BTC-USD")
    assert event.event_time == T0 + timedelta(seconds=10)


def test_outlier_venue_is_excluded() -> None:
    c = Consolidator(interval_s=10, window_s=60, outlier_pct=Decimal(5))
    add(c, "binance", "BTC-USDT", 1, "100", "1")
    add(c, "coinbase", "BTC-USD", 2, "101", "1")
    add(c, "kraken", "BTC-USD", 3, "150", "10")
    [event] = add(c, "binance", "BTC-USDT", 12, "100", "1")
    assert event.contributors == ("binance:BTC-USDT", "coinbase:BTC-USD")
    assert event.price == Decimal("100.5")
    assert c.excluded_outliers == 1


def test_stale_venue_is_excluded() -> None:
    c = Consolidator(interval_s=10, window_s=120, stale_after_s=30, outlier_pct=Decimal(50))
    add(c, "kraken", "BTC-USD", 1, "90", "1")
    add(c, "binance", "BTC-USDT", 45, "100", "1")
    [event] = add(c, "binance", "BTC-USDT", 51, "100", "1")
    assert event.contributors == ("binance:BTC-USDT",)
    assert c.excluded_stale == 1


def test_floor_tracks_oldest_trade_in_window() -> None:
    c = Consolidator(interval_s=10, window_s=20)
    add(c, "binance", "BTC-USDT", 1, "100", "1", offset=5)
    add(c, "binance", "BTC-USDT", 15, "100", "1", offset=6)
    assert c.floor(("binance", 0)) == 5
    add(c, "binance", "BTC-USDT", 45, "100", "1", offset=7)  # prunes trades before 20 s
    assert c.floor(("binance", 0)) == 7
