"""Every service's command line: --help and --version without connecting anywhere, options
and variables into settings, and configuration errors as one line with exit code 2."""

from __future__ import annotations

import importlib.metadata
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from coinstream.runtime import KafkaSettings
from coinstream.runtime.cli import EXIT_CONFIGURATION, load_settings
from coinstream.runtime.config_errors import env_names
from coinstream.sink_postgres.settings import SinkPostgresSettings

SERVICES = {
    "ingest-rest": ("coinstream.ingest_rest", "INGEST_REST_"),
    "ingest-ws": ("coinstream.ingest_ws", "INGEST_WS_"),
    "normalizer": ("coinstream.normalizer", "NORMALIZER_"),
    "sink-postgres": ("coinstream.sink_postgres", "SINK_POSTGRES_"),
    "alerts": ("coinstream.alerts", "ALERTS_"),
}
BIN = Path(sys.executable).parent


def _clean_env(**extra: str) -> dict[str, str]:
    prefixes = ("KAFKA_", "DATABASE_URL", *(p for _, p in SERVICES.values()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return env | extra


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port that records whether anything connected to it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        yield sock


def _connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_help_lists_settings_with_their_variables_and_connects_nowhere(
    service: str, listener: socket.socket
) -> None:
    module, prefix = SERVICES[service]
    port = listener.getsockname()[1]
    target = f"127.0.0.1:{port}"
    env = _clean_env(
        KAFKA_BOOTSTRAP_SERVERS=target,
        DATABASE_URL=f"postgresql://u@{target}/db",
        INGEST_REST_COINGECKO__BASE_URL=f"http://{target}",
        INGEST_WS_BINANCE__URL=f"ws://{target}",
    )
    proc = _run([sys.executable, "-m", module, "--help"], env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f"usage: coinstream-{service} ")
    assert "--kafka.bootstrap-servers" in out and "KAFKA_BOOTSTRAP_SERVERS" in out
    assert f"[env: {prefix}LOG_LEVEL]" in out and "--log-level" in out
    assert not _connected(listener), "--help must not connect anywhere"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_console_script_answers_version(service: str) -> None:
    proc = _run([str(BIN / f"coinstream-{service}"), "--version"], _clean_env())
    assert proc.returncode == 0, proc.stderr
    version = importlib.metadata.version(f"coinstream-{service}")
    assert proc.stdout.strip() == f"coinstream-{service} {version}"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_kafka_value_of_the_wrong_type_is_one_line_and_exit_2(service: str) -> None:
    module, _ = SERVICES[service]
    proc = _run([sys.executable, "-m", module], _clean_env(KAFKA_ENABLE_IDEMPOTENCE="maybe"))
    assert proc.returncode == EXIT_CONFIGURATION
    assert proc.stderr.splitlines() == [
        f"coinstream-{service}: configuration error: KAFKA_ENABLE_IDEMPOTENCE='maybe': "
        "expected true or false"
    ]


@pytest.mark.parametrize(
    ("service", "variable", "value", "expected"),
    [
        (
            "ingest-ws",
            "INGEST_WS_BINANCE__SYMBOLS",
            "BTC-USDT",
            'expected a JSON list, e.g. ["BTC-USDT","ETH-USDT"]',
        ),
        ("ingest-rest", "INGEST_REST_COINGECKO__INTERVAL_S", "often", "expected a number"),
        ("normalizer", "NORMALIZER_DEDUP_WINDOW", "-5", "expected a number of at least 0"),
        ("sink-postgres", "SINK_POSTGRES_TOPICS", '["prices","nope"]', "expected one of"),
        ("alerts", "ALERTS_SMTP__PORT", "70000", "expected a number of at most 65535"),
    ],
)
def test_service_values_of_the_wrong_form_name_the_variable(
    service: str, variable: str, value: str, expected: str
) -> None:
    module, _ = SERVICES[service]
    proc = _run([sys.executable, "-m", module], _clean_env(**{variable: value}))
    assert proc.returncode == EXIT_CONFIGURATION
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"coinstream-{service}: configuration error: {variable}=")
    assert expected in line


def test_semantic_checks_exit_2_with_one_line_too() -> None:
    """An unknown symbol (checked after parsing) is reported the same way as a bad type."""
    proc = _run(
        [sys.executable, "-m", "coinstream.ingest_ws"],
        _clean_env(INGEST_WS_KRAKEN__SYMBOLS='["BTC-USD","NOPE-USD"]'),
    )
    assert proc.returncode == EXIT_CONFIGURATION
    [line] = proc.stderr.splitlines()
    assert line.startswith("coinstream-ingest-ws: configuration error: kraken: unknown symbol")
    assert "INGEST_WS_KRAKEN__SYMBOLS" in line


def test_an_unknown_option_is_a_usage_error() -> None:
    proc = _run([sys.executable, "-m", "coinstream.normalizer", "--no-such-option"], _clean_env())
    assert proc.returncode == EXIT_CONFIGURATION
    assert "unrecognized arguments: --no-such-option" in proc.stderr


def test_options_set_settings_and_win_over_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SINK_POSTGRES_LOG_LEVEL", "ERROR")
    monkeypatch.setenv("KAFKA_LINGER_MS", "7")
    monkeypatch.setenv("DATABASE_URL", "postgresql://env@db/x")
    settings, args = load_settings(
        SinkPostgresSettings,
        ["--log-level", "DEBUG", "--kafka.topic-prefix", "mine", "--batch-max-rows", "10"],
        prog="coinstream-sink-postgres",
        description="test",
        distribution="coinstream-sink-postgres",
    )
    assert settings.log_level == "DEBUG" and settings.batch_max_rows == 10
    assert settings.kafka.topic_prefix == "mine" and settings.kafka.linger_ms == 7
    assert settings.database_url.get_secret_value() == "postgresql://env@db/x"
    assert vars(args) == {}


def test_an_option_of_the_wrong_type_is_named_as_the_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        load_settings(
            SinkPostgresSettings,
            ["--http.port", "eighty"],
            prog="coinstream-sink-postgres",
            description="test",
            distribution="coinstream-sink-postgres",
        )
    assert exit_.value.code == EXIT_CONFIGURATION
    assert capsys.readouterr().err == (
        "coinstream-sink-postgres: configuration error: --http.port='eighty': "
        "expected a whole number\n"
    )


class _TokenSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="T_")
    api_token: int = 0
    retries: int = 0


def test_a_secret_of_the_wrong_form_is_named_but_not_shown(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several errors stay on one line; a value of a field named like a secret is not echoed."""
    monkeypatch.setenv("T_API_TOKEN", "s3cr3t-value")
    monkeypatch.setenv("T_RETRIES", "many")
    with pytest.raises(SystemExit):
        load_settings(_TokenSettings, [], prog="p", description="test", distribution="x")
    err = capsys.readouterr().err
    assert err == (
        "p: configuration error: T_API_TOKEN: expected a whole number; "
        "T_RETRIES='many': expected a whole number\n"
    )


def test_environment_names_follow_prefixes_nesting_and_aliases() -> None:
    assert env_names(SinkPostgresSettings, ("kafka", "bootstrap_servers")) == [
        "KAFKA_BOOTSTRAP_SERVERS",
        "SINK_POSTGRES_KAFKA__BOOTSTRAP_SERVERS",
    ]
    assert env_names(SinkPostgresSettings, ("database_url",)) == [
        "SINK_POSTGRES_DATABASE_URL",
        "DATABASE_URL",
    ]
    assert env_names(SinkPostgresSettings, ("http", "port")) == ["SINK_POSTGRES_HTTP__PORT"]
    assert env_names(KafkaSettings, ("linger_ms",)) == ["KAFKA_LINGER_MS"]
    assert env_names(SinkPostgresSettings, ("no_such_field",)) == []
