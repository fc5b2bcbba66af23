"""Settings come from the documented environment variables."""

from __future__ import annotations

import os
import subprocess
import sys

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


def _cli(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_WS_", "KAFKA_"))}
    return subprocess.run(
        [sys.executable, "-m", "coinstream.ingest_ws"],
        env={**clean, **env},
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"INGEST_WS_COINGECKO_WS__ENABLED": "true"}, "INGEST_WS_COINGECKO_WS__API_KEY"),
        (
            {"INGEST_WS_COINMARKETCAP_WS__ENABLED": "true",
             "INGEST_WS_COINMARKETCAP_WS__API_KEY": "secret-123",
             "INGEST_WS_COINMARKETCAP_WS__TOKENS": '["bsc:0x1"]'},
            "INGEST_WS_COINMARKETCAP_WS__TOKENS",
        ),
        (
            {"INGEST_WS_COINGECKO_WS__ENABLED": "true",
             "INGEST_WS_COINGECKO_WS__API_KEY": "secret-123",
             "INGEST_WS_COINGECKO_WS__OHLCV_INTERVALS": '["3m"]'},
            "INGEST_WS_COINGECKO_WS__OHLCV_INTERVALS",
        ),
    ],
)  # fmt: skip
def test_aggregator_configuration_errors_are_one_line_with_exit_2(
    env: dict[str, str], variable: str
) -> None:
    """A missing key or a malformed target stops start-up naming the variable; the key
    itself is never printed."""
    proc = _cli(**env)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("coinstream-ingest-ws: configuration error: ") and variable in line
    assert "secret-123" not in proc.stderr + proc.stdout


def test_aggregator_venues_are_off_by_default_and_read_their_settings_from_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert [p.name for p in build_protocols(IngestWsSettings())] == [
        "binance",
        "coinbase",
        "kraken",
    ]
    monkeypatch.setenv("INGEST_WS_COINGECKO_WS__ENABLED", "true")
    monkeypatch.setenv("INGEST_WS_COINGECKO_WS__API_KEY", "k")
    monkeypatch.setenv("INGEST_WS_COINGECKO_WS__POOLS", '["eth:0xABC"]')
    monkeypatch.setenv("INGEST_WS_COINMARKETCAP_WS__CRYPTO_IDS", "[1,2]")
    s = IngestWsSettings()
    assert s.coinmarketcap_ws.crypto_ids == [1, 2]  # type: ignore[attr-defined]
    (cg,) = [p for p in build_protocols(s) if p.name == "coingecko-ws"]
    assert cg.plan()[0].headers == {"x-cg-pro-api-key": "k"}
    assert ("OnchainTrade", "eth:0xabc") in cg.plan()[0].streams  # hex addresses: lower case
