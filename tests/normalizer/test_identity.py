"""The identity registry maps source ids to canonical assets and never guesses."""

from __future__ import annotations

import pytest

from coinstream.normalizer.errors import UnknownInstrumentError
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.parsers import kraken


@pytest.mark.parametrize(
    ("venue", "native", "symbol", "asset"),
    [
        ("binance", "BTCUSDT", "BTC-USDT", "bitcoin"),
        ("binance", "PEPEUSDT", "PEPE-USDT", "pepe"),
        ("binance", "BNBBTC", "BNB-BTC", "binancecoin"),
        ("coinbase", "BTC-USD", "BTC-USD", "bitcoin"),
        ("kraken", "BTC/USD", "BTC-USD", "bitcoin"),
        ("kraken", "XBT/USD", "BTC-USD", "bitcoin"),
        ("kraken", "ALGO/USD", "ALGO-USD", "algorand"),
    ],
)
def test_venue_symbols_resolve_to_canonical_instruments(
    venue: str, native: str, symbol: str, asset: str
) -> None:
    codes = kraken.CODES if venue == "kraken" else None  # the venue parser's own codes
    inst = Registry().instrument(venue, native, codes=codes)
    assert (inst.symbol, inst.asset_id, inst.native) == (symbol, asset, native)


def test_the_registry_holds_no_venue_codes() -> None:
    """Kraken's XBT is the Kraken parser's knowledge: the core registry does not map it."""
    assert Registry().instrument("somevenue", "XBT/USD").symbol == "XBT-USD"


def test_unknown_base_code_is_reported_not_guessed() -> None:
    registry = Registry()
    inst = registry.instrument("coinbase", "ZZZ-USD")
    assert inst.asset_id is None
    assert "coinbase:ZZZ" in registry.unmapped


def test_unsplittable_symbol_is_an_unknown_instrument() -> None:
    with pytest.raises(UnknownInstrumentError):
        Registry().instrument("binance", "FOOBAR")


def test_key_hint_splits_symbols_with_unknown_quotes() -> None:
    assert Registry().instrument("binance", "FOOBAR", hint="FOO-BAR").symbol == "FOO-BAR"


def test_provider_ids_map_and_unknown_ids_stay_namespaced() -> None:
    registry = Registry()
    assert registry.by_coingecko("bitcoin") == registry.by_cmc(1) == "bitcoin"
    assert registry.by_contract("ethereum", "0x6982508145454CE325DDBE47A25D4EC3D2311933") == "pepe"
    # a different token with the same ticker is never merged with the known one
    assert registry.by_coingecko("pepe-on-another-chain") == "coingecko:pepe-on-another-chain"
    assert registry.by_contract("bsc", "0xdeadbeef") == "dex:bsc:0xdeadbeef"
    assert registry.by_cmc(999999) == "cmc:999999"
    assert {
        "coingecko:pepe-on-another-chain",
        "dex:bsc:0xdeadbeef",
        "cmc:999999",
    } <= registry.unmapped
