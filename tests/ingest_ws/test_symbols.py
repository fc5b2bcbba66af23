"""Canonical symbol mapping per venue and start-up rejection of unknown symbols (no I/O)."""

from __future__ import annotations

import pytest

from coinstream.ingest_ws.errors import UnknownSymbolError
from coinstream.ingest_ws.symbols import SymbolMap, canonical_from_venue, to_venue


@pytest.mark.parametrize(
    ("venue", "canonical", "native"),
    [
        ("binance", "BTC-USDT", "BTCUSDT"),
        ("binance", "PEPE-USDT", "PEPEUSDT"),
        ("coinbase", "BTC-USD", "BTC-USD"),
        ("kraken", "BTC-USD", "BTC/USD"),
        ("kraken", "ETH-USDT", "ETH/USDT"),
    ],
)
def test_canonical_symbols_map_to_venue_form_and_back(
    venue: str, canonical: str, native: str
) -> None:
    mapping = SymbolMap.build(venue, [canonical])
    assert to_venue(venue, canonical) == native
    assert mapping.from_venue(native) == canonical


def test_binance_lowercase_stream_symbols_map_back() -> None:
    mapping = SymbolMap.build("binance", ["ETH-USDT"])
    assert mapping.from_venue("ethusdt") == "ETH-USDT"


def test_kraken_legacy_xbt_means_btc() -> None:
    assert canonical_from_venue("kraken", "XBT/USD") == "BTC-USD"
    assert SymbolMap.build("kraken", ["ETH-USD"]).from_venue("XBT/EUR") == "BTC-EUR"


def test_unconfigured_binance_symbols_are_split_at_a_known_quote() -> None:
    assert canonical_from_venue("binance", "SOLFDUSD") == "SOL-FDUSD"
    assert canonical_from_venue("binance", "XYZ") is None


def test_unknown_symbol_is_rejected_with_the_setting_to_change() -> None:
    with pytest.raises(UnknownSymbolError) as info:
        SymbolMap.build("coinbase", ["BTC-USD", "FOO-USD", "BTC-TRY"])
    text = str(info.value)
    assert "FOO-USD" in text and "BTC-TRY" in text and "BTC-USD," not in text
    assert "INGEST_WS_COINBASE__SYMBOLS" in text and "INGEST_WS_COINBASE__EXTRA_SYMBOLS" in text


def test_malformed_symbol_is_rejected() -> None:
    with pytest.raises(UnknownSymbolError, match="canonical form"):
        SymbolMap.build("binance", ["btcusdt"])


def test_extra_symbols_extend_the_catalogue() -> None:
    mapping = SymbolMap.build("kraken", ["FOO-USD"], extra=["FOO-USD"])
    assert mapping.to_venue("FOO-USD") == "FOO/USD"


def test_duplicate_symbols_are_subscribed_once() -> None:
    assert SymbolMap.build("binance", ["BTC-USDT", "BTC-USDT"]).canonical == ("BTC-USDT",)
