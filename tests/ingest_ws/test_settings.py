"""Settings come from the documented environment variables."""

from __future__ import annotations

import pytest

from coinstream.ingest_ws.app import build_protocols
from coinstream.ingest_ws.errors import UnknownSymbolError
from coinstream.ingest_ws.settings import IngestWsSettings


def test_env_contract_names_configure_each_venue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_WS_BINANCE__URL", "ws://127.0.0.1:9/binance")
    monkeypatch.setenv("INGEST_WS_BINANCE__SYMBOLS", '["BTC-USDT","PEPE-USDT"]')
    monkeypatch.setenv("INGEST_WS_BINANCE__CHANNELS", '["trade","aggTrade"]')
    monkeypatch.setenv("INGEST_WS_COINBASE__ENABLED", "false")
    monkeypatch.setenv("INGEST_WS_KRAKEN__URL", "ws://127.0.0.1:9/kraken/v2")
    monkeypatch.setenv("INGEST_WS_HTTP__PORT", "9123")
    s = IngestWsSettings()
    assert s.binance.url == "ws://127.0.0.1:9/binance"
    assert s.binance.symbols == ["BTC-USDT", "PEPE-USDT"]
    assert s.binance.channels == ["trade", "aggTrade"]
    assert s.binance.max_connection_age_s == 23.5 * 3600  # venue default kept
    assert s.coinbase.enabled is False
    assert s.coinbase.channels == ["ticker", "market_trades", "heartbeats"]
    assert s.kraken.symbols == ["BTC-USD", "ETH-USD"] and s.http.port == 9123
    assert [p.name for p in build_protocols(s)] == ["binance", "kraken"]


def test_defaults_point_at_the_real_venues() -> None:
    s = IngestWsSettings()
    assert s.binance.url == "wss://stream.binance.com:9443"
    assert s.coinbase.url == "wss://advanced-trade-ws.coinbase.com"
    assert s.kraken.url == "wss://ws.kraken.com/v2"
    assert s.binance.channels == ["trade", "bookTicker"]


def test_unknown_symbol_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_WS_KRAKEN__SYMBOLS", '["BTC-USD","NOPE-USD"]')
    with pytest.raises(UnknownSymbolError, match="NOPE-USD"):
        build_protocols(IngestWsSettings())
