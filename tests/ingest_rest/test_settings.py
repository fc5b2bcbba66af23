"""The environment-variable contract: INGEST_REST_<SRC>__ENABLED/BASE_URL/API_KEY/INTERVAL_S."""

from typing import ClassVar

import pytest

from coinstream.ingest_rest.app import enabled_sources
from coinstream.ingest_rest.poller import endpoint_interval
from coinstream.ingest_rest.registry import load_sources
from coinstream.ingest_rest.settings import build_settings, settings_class
from coinstream.ingest_rest.source import Endpoint, RestSource, SourceSettings, expect_dict
from coinstream.ingest_rest.sources.coingecko import SOURCE as CG


def test_env_vars_configure_each_source_and_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "INGEST_REST_HTTP__PORT": "9100",
        "INGEST_REST_CMC_DEX__ENABLED": "false",
        "INGEST_REST_CMC_DEX__BASE_URL": "http://sim:1/cmc",
        "INGEST_REST_COINMARKETCAP__API_KEY": "env-secret",
        "INGEST_REST_FEARGREED__INTERVAL_S": "5",
        "INGEST_REST_COINGECKO__PLAN": "pro",
        "INGEST_REST_COINGECKO__ENDPOINTS__EXCHANGES__ENABLED": "false",
        "INGEST_REST_COINGECKO__ENDPOINTS__GLOBAL__INTERVAL_S": "42",
        "INGEST_REST_COINMARKETCAP__CALLS_PER_MINUTE": "10",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = build_settings()
    assert s.http.port == 9100
    assert s.source(CG).endpoint("exchanges").enabled is False
    cg = s.source(CG)
    assert endpoint_interval(next(e for e in CG.endpoints() if e.key == "global"), cg) == 42
    assert endpoint_interval(next(e for e in CG.endpoints() if e.key == "ping"), cg) == 60
    dump = s.model_dump()
    assert dump["cmc_dex"]["enabled"] is False and dump["cmc_dex"]["base_url"] == "http://sim:1/cmc"
    assert dump["feargreed"]["interval_s"] == 5
    assert dump["coingecko"]["plan"] == "pro"
    assert dump["coinmarketcap"]["calls_per_minute"] == 10
    assert "env-secret" not in repr(s) and "env-secret" not in s.model_dump_json()


def test_defaults_are_the_real_provider_urls() -> None:
    dump = build_settings().model_dump()
    assert dump["coinmarketcap"]["base_url"] == "https://pro-api.coinmarketcap.com"
    assert dump["cmc_dex"]["base_url"] == "https://pro-api.coinmarketcap.com"
    assert dump["feargreed"]["base_url"] == "https://api.alternative.me"
    assert CG.base_url(build_settings().source(CG)) == "https://api.coingecko.com/api/v3"


def test_disabled_sources_are_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_REST_CMC_DEX__ENABLED", "false")
    monkeypatch.setenv("INGEST_REST_COINMARKETCAP__ENABLED", "0")
    names = [s.name for s in enabled_sources(build_settings(), load_sources())]
    assert names == ["coingecko", "feargreed"]


class _ExampleSettings(SourceSettings):
    base_url: str = "https://api.example.com"
    symbols: list[str] = ["BTC"]


class _Example(RestSource):
    """A third-party plugin: no core module knows about it."""

    name: ClassVar[str] = "ex-ample"
    settings_model: ClassVar[type[SourceSettings]] = _ExampleSettings

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint("tickers", "/tickers", 60.0, lambda s: [], expect_dict("data"))]


def test_a_new_plugin_gets_its_env_settings_without_core_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INGEST_REST_EX_AMPLE__SYMBOLS", '["ETH","SOL"]')
    monkeypatch.setenv("INGEST_REST_EX_AMPLE__ENDPOINTS__TICKERS__INTERVAL_S", "7")
    plugin = _Example()
    settings = settings_class([plugin])()
    own = settings.source(plugin)
    assert isinstance(own, _ExampleSettings) and own.symbols == ["ETH", "SOL"]
    assert endpoint_interval(plugin.endpoints()[0], own) == 7
    assert own.base_url == "https://api.example.com"
