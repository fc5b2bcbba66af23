"""Settings: the environment contract the demo and the end-to-end test rely on."""

from __future__ import annotations

import pytest

from coinstream.sink_postgres.settings import SinkPostgresSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "SINK_POSTGRES_DATABASE_URL", "SINK_POSTGRES_GROUP_ID"):
        monkeypatch.delenv(name, raising=False)


def test_database_url_falls_back_to_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@db/one")
    assert SinkPostgresSettings().database_url.get_secret_value() == "postgresql://u:pw@db/one"
    monkeypatch.setenv("SINK_POSTGRES_DATABASE_URL", "postgresql://u:pw@db/two")
    assert SinkPostgresSettings().database_url.get_secret_value() == "postgresql://u:pw@db/two"


def test_the_database_url_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SINK_POSTGRES_DATABASE_URL", "postgresql://u:hunter2@db/x")
    settings = SinkPostgresSettings()
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


def test_documented_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SINK_POSTGRES_GROUP_ID", "g1")
    monkeypatch.setenv("SINK_POSTGRES_BATCH_MAX_WAIT_MS", "250")
    monkeypatch.setenv("SINK_POSTGRES_HTTP__PORT", "9123")
    monkeypatch.setenv("SINK_POSTGRES_TOPICS", '["prices", "candles"]')
    s = SinkPostgresSettings()
    assert (s.group_id, s.batch_max_wait_ms, s.http.port) == ("g1", 250, 9123)
    assert s.topics == ("prices", "candles")


def test_defaults_match_the_contract() -> None:
    s = SinkPostgresSettings()
    assert s.group_id == "coinstream-sink-postgres"
    assert s.migrate_on_start and s.timescale == "auto"
