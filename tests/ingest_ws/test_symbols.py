"""Canonical symbol mapping per venue and start-up rejection of unknown symbols (no I/O).

Each venue plugin holds its catalogue and symbol form; ``symbols.SymbolMap`` validates against it.
"""

from __future__ import annotations

import pytest

from coinstream.ingest_ws.errors import UnknownSymbolError
from coinstream.ingest_ws.symbols import SymbolForm, SymbolMap
from coinstream.ingest_ws.venues import protocols


def form(venue: str) -> SymbolForm:
    """The venue's symbol form (its protocol, built without symbols or I/O)."""
    cls = protocols()[venue]
    return cls(cls.settings_class(symbols=[]))


def canonical_from_venue(venue: str, native: str) -> str | None:
    return form(venue).canonical(native)


def to_venue(venue: str, symbol: str) -> str:
    return form(venue).native(symbol)


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
    mapping = SymbolMap.build(form(venue), [canonical])
    assert to_venue(venue, canonical) == native
    assert mapping.from_venue(native) == canonical


def test_binance_lowercase_stream_symbols_map_back() -> None:
    mapping = SymbolMap.build(form("binance"), ["ETH-USDT"])
    assert mapping.from_venue("ethusdt") == "ETH-USDT"


def test_kraken_legacy_xbt_means_btc() -> None:
    assert canonical_from_venue("kraken", "XBT/USD") == "BTC-USD"
    assert SymbolMap.build(form("kraken"), ["ETH-USD"]).from_venue("XBT/EUR") == "BTC-EUR"


def test_unconfigured_binance_symbols_are_split_at_a_known_quote() -> None:
    assert canonical_from_venue("binance", "SOLFDUSD") == "SOL-FDUSD"
    assert canonical_from_venue("binance", "XYZ") is None


def test_unknown_symbol_is_rejected_with_the_setting_to_change() -> None:
    with pytest.raises(UnknownSymbolError) as info:
        SymbolMap.build(form("coinbase"), ["BTC-USD", "FOO-USD", "BTC-TRY"])
    text = str(info.value)
    assert "FOO-USD" in text and "BTC-TRY" in text and "BTC-USD," not in text
    assert "INGEST_WS_COINBASE__SYMBOLS" in text and "INGEST_WS_COINBASE__EXTRA_SYMBOLS" in text


def test_malformed_symbol_is_rejected() -> None:
    with pytest.raises(UnknownSymbolError, match="canonical form"):
        SymbolMap.build(form("binance"), ["btcusdt"])


def test_extra_symbols_extend_the_catalogue() -> None:
    mapping = SymbolMap.build(form("kraken"), ["FOO-USD"], extra=["FOO-USD"])
    assert mapping.to_venue("FOO-USD") == "FOO/USD"


def test_duplicate_symbols_are_subscribed_once() -> None:
    assert SymbolMap.build(form("binance"), ["BTC-USDT", "BTC-USDT"]).canonical == ("BTC-USDT",)


def test_core_symbol_code_names_no_venue() -> None:
    """Venue knowledge lives in the venue plugins: the shared module has no venue tables."""
    import inspect

    from coinstream.ingest_ws import symbols

    text = inspect.getsource(symbols).lower()
    assert not any(v in text for v in ("binance", "coinbase", "kraken", "xbt"))
