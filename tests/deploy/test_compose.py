"""deploy/compose.yaml, checked offline: the Compose Specification's JSON schema, then what
`docker compose config` would catch and what the services themselves would refuse."""

from __future__ import annotations

import base64
import copy
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from coinstream.schemas import Topics

from .deploy_helpers import (
    DEPLOY,
    ROOT,
    SCHEMAS,
    SERVICES,
    build_settings,
    interpolate,
    load_json,
    read_env_file,
    unknown_variables,
    variables,
)

COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
TOPICS_SCRIPT = DEPLOY / "k8s" / "topics" / "create-topics.sh"
SHUTDOWN_TIMEOUT_S = 15.0  # ServiceSettings.shutdown_timeout_s default


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


def coinstream_services(compose: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """compose service name -> (service directory, definition) for every Coinstream service."""
    found = {}
    for name, svc in compose["services"].items():
        dockerfile = (svc.get("build") or {}).get("dockerfile", "")
        match = re.fullmatch(r"services/([a-z-]+)/Dockerfile", dockerfile)
        if match:
            found[name] = (match.group(1), svc)
    return found


def service_env(svc: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    return {k: interpolate(str(v), env) for k, v in svc.get("environment", {}).items()}


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = load_json(SCHEMAS / "compose-spec.json")
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(compose)]
    assert errors == []
    broken = copy.deepcopy(compose)
    broken["services"]["kafka"]["enviroment"] = {}
    assert list(validator.iter_errors(broken)), "the schema must reject unknown keys"


def test_every_interpolated_variable_is_in_the_env_example(env_example: dict[str, str]) -> None:
    used = variables(COMPOSE.read_text())
    assert used - set(env_example) == set(), "document these in deploy/.env.example"
    assert set(env_example) - used - {"COMPOSE_PROFILES"} == set(), "unused in compose.yaml"
    assert env_example["COMPOSE_PROFILES"] == "sim"


def test_compose_defaults_equal_the_env_example(env_example: dict[str, str]) -> None:
    """Running without deploy/.env behaves like running with the example."""
    text = COMPOSE.read_text()
    defaults = re.findall(r"\$\{([A-Z0-9_]+):-([^}]*)\}", text)
    assert defaults
    for name, default in defaults:
        assert default == env_example[name], name


def test_env_files_stay_out_of_git() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "deploy/.env", "deploy/secrets/ingest-rest.env"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,  # exit 1 when a path is not ignored: the assertion below says which
    ).stdout.split()
    assert ignored == ["deploy/.env", "deploy/secrets/ingest-rest.env"]


def test_every_service_runs_in_compose(compose: dict[str, Any]) -> None:
    dirs = {d for d, _ in coinstream_services(compose).values()}
    assert dirs == set(SERVICES)
    for name in ("kafka", "kafka-init", "postgres", "market-sim", "prometheus", "grafana"):
        assert name in compose["services"], name


def test_both_source_profiles_have_the_ingest_services(compose: dict[str, Any]) -> None:
    by_profile: dict[str, set[str]] = {}
    for directory, svc in coinstream_services(compose).values():
        for profile in svc.get("profiles", ["sim", "live"]):
            by_profile.setdefault(profile, set()).add(directory)
        if "live" in svc.get("profiles", []):
            aliases = svc["networks"]["default"]["aliases"]
            assert aliases == [directory], "Prometheus scrapes the directory name"
    assert by_profile["sim"] == by_profile["live"] == set(SERVICES)
    assert compose["services"]["market-sim"]["profiles"] == ["sim"]


@pytest.mark.parametrize("profile", ["sim", "live"])
def test_services_accept_their_compose_environment(
    compose: dict[str, Any],
    env_example: dict[str, str],
    profile: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each service's settings class knows every variable compose sets, and parses the values."""
    from coinstream.alerts.rules import load_rules

    rules_file = interpolate(env_example["ALERT_RULES_FILE"], env_example)
    receiver_secrets = frozenset(load_rules(DEPLOY / rules_file).secret_names().values())
    for name, (directory, svc) in coinstream_services(compose).items():
        if profile not in svc.get("profiles", [profile]):
            continue
        env = service_env(svc, env_example)
        assert unknown_variables(directory, env, receiver_secrets) == [], name
        with monkeypatch.context() as mp:
            settings: Any = build_settings(directory, env, mp)
        assert settings.kafka.bootstrap_servers == "kafka:19092"
        assert settings.kafka.enable_idempotence is True, "idempotence stays on with Apache Kafka"
        assert settings.kafka.session_timeout_ms >= 6000, "Apache Kafka's minimum"
        assert settings.http.port == 8080
        assert settings.shutdown_timeout_s == SHUTDOWN_TIMEOUT_S


def test_sim_profile_points_every_source_at_the_simulator(
    compose: dict[str, Any], env_example: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = compose["services"]["ingest-ws"]
    settings: Any = build_settings("ingest-ws", service_env(svc, env_example), monkeypatch)
    for venue in ("binance", "coinbase", "kraken"):
        assert getattr(settings, venue).url.startswith("ws://market-sim:8900/")
    rest = service_env(compose["services"]["ingest-rest"], env_example)
    bases = [v for k, v in rest.items() if k.endswith("__BASE_URL")]
    assert len(bases) == 4 and all(b.startswith("http://market-sim:8900/") for b in bases)
    live = service_env(compose["services"]["ingest-rest-live"], env_example)
    assert not [k for k in live if k.endswith(("__BASE_URL", "__API_KEY"))], "live: defaults"


def test_stop_grace_period_covers_the_drain_deadline(compose: dict[str, Any]) -> None:
    for name, (_, svc) in coinstream_services(compose).items():
        grace = svc["stop_grace_period"]
        assert grace.endswith("s")
        assert float(grace[:-1]) >= SHUTDOWN_TIMEOUT_S + 5, name


def test_dependencies_exist_and_start_in_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        for dep in deps if isinstance(deps, list) else deps.keys():
            assert dep in services, f"{name} depends on unknown {dep}"
            mine, theirs = set(svc.get("profiles", [])), set(services[dep].get("profiles", []))
            assert not theirs or (mine and mine <= theirs), f"{name} -> {dep}: profile mismatch"
    for name, (_, svc) in coinstream_services(compose).items():
        cond = svc["depends_on"]["kafka-init"]["condition"]
        assert cond == "service_completed_successfully", name
    for name in ("sink-postgres", "alerts"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_builds_use_the_repository_root_and_existing_dockerfiles(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        build = svc.get("build")
        if not build:
            continue
        assert (DEPLOY / build["context"]).resolve() == ROOT, name
        assert (ROOT / build["dockerfile"]).is_file(), name


def test_bind_mounts_exist(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = interpolate(volume, env_example).split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} is missing"


GRAFANA_OLDEST_SUPPORTED = (13, 1)
"""Grafana Labs patches the latest minor releases only (11.4 went out of support in 2025).
Raise this when moving the pin; the test keeps an unsupported release from coming back."""


def test_grafana_image_is_a_supported_release(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    image = interpolate(compose["services"]["grafana"]["image"], env_example)
    assert image == env_example["GRAFANA_IMAGE"], "compose default and .env.example differ"
    name, _, tag = image.partition(":")
    assert name == "grafana/grafana"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"pin an exact release, not {tag!r}"
    major, minor, _ = (int(p) for p in tag.split("."))
    assert (major, minor) >= GRAFANA_OLDEST_SUPPORTED, f"{image} is out of support"


def test_kafka_runs_kraft_with_idempotence_friendly_defaults(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    kafka = {
        k: interpolate(str(v), env_example)
        for k, v in compose["services"]["kafka"]["environment"].items()
    }
    assert interpolate(compose["services"]["kafka"]["image"], env_example).startswith(
        "apache/kafka:"
    )
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not [k for k in kafka if "ZOOKEEPER" in k]
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert len(base64.urlsafe_b64decode(kafka["CLUSTER_ID"] + "==")) == 16
    port = env_example["KAFKA_HOST_PORT"]
    assert f"EXTERNAL://localhost:{port}" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert "INTERNAL://kafka:19092" in kafka["KAFKA_ADVERTISED_LISTENERS"]


def test_topic_job_mounts_the_script(compose: dict[str, Any]) -> None:
    init = compose["services"]["kafka-init"]
    assert init["restart"] == "no"
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    mount = init["volumes"][0].split(":")
    assert (DEPLOY / mount[0]).resolve() == TOPICS_SCRIPT.resolve()
    assert init["entrypoint"][-1] == mount[1]


def run_topics_script(tmp_path: Path, **env: str) -> list[list[str]]:
    """Run create-topics.sh with a kafka-topics.sh stand-in that records its arguments.

    This checks the script's own logic (names, partitions, configs); creating topics on a
    broker is kafka-topics.sh's job and is not what is tested here.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    tool = bin_dir / "kafka-topics.sh"
    tool.write_text(f'#!/bin/sh\nprintf "%s\\037" "$@" >> {log}\necho >> {log}\n')
    tool.chmod(0o755)
    subprocess.run(
        ["sh", str(TOPICS_SCRIPT)],
        env={"PATH": os.environ["PATH"], "KAFKA_HOME": str(tmp_path), **env},
        check=True,
        capture_output=True,
    )
    return [line.rstrip("\x1f").split("\x1f") for line in log.read_text().splitlines()]


def _created(calls: list[list[str]]) -> dict[str, dict[str, Any]]:
    topics = {}
    for call in calls:
        if "--create" not in call:
            continue
        assert "--if-not-exists" in call
        configs = dict(call[i + 1].split("=", 1) for i, a in enumerate(call) if a == "--config")
        topics[call[call.index("--topic") + 1]] = {
            "partitions": int(call[call.index("--partitions") + 1]),
            "replication": int(call[call.index("--replication-factor") + 1]),
            "configs": configs,
        }
    return topics


def test_topic_script_creates_exactly_the_schema_topics(tmp_path: Path) -> None:
    """Same names as Topics.specs() plus the internal ones, the configured partitions,
    metadata and checkpoints compacted."""
    calls = run_topics_script(
        tmp_path, TOPIC_PREFIX="acme", TOPIC_PARTITIONS="6", TOPIC_REPLICATION_FACTOR="3"
    )
    created = _created(calls)
    specs = Topics("acme").specs() + Topics("acme").internal_specs()
    assert sorted(created) == sorted(s.name for s in specs)
    work = {Topics("acme").ingest_rest_work, Topics("acme").ingest_ws_work}
    for spec in specs:
        topic = created[spec.name]
        partitions = spec.partitions if spec.name in work else 6  # work topics: a fixed count
        assert topic["partitions"] == partitions and topic["replication"] == 3
        for key, value in spec.configs.items():
            assert topic["configs"][key] == value
        if spec.configs.get("cleanup.policy") != "compact":
            assert int(topic["configs"]["retention.ms"]) >= 86_400_000
    assert created["acme.metadata.v1"]["configs"]["cleanup.policy"] == "compact"


def test_topic_script_defaults_match_compose(tmp_path: Path, compose: dict[str, Any]) -> None:
    created = _created(run_topics_script(tmp_path))
    work = [created.pop(Topics().ingest_rest_work), created.pop(Topics().ingest_ws_work)]
    assert {t["partitions"] for t in created.values()} == {Topics().specs()[0].partitions}
    assert {w["partitions"] for w in work} == {Topics().internal_specs()[-1].partitions}
    assert all(name.startswith("coinstream.") for name in created)
    env = compose["services"]["kafka-init"]["environment"]
    assert env["BOOTSTRAP_SERVERS"] == "kafka:19092"


def test_prometheus_scrapes_every_service(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for directory in SERVICES:
        (sd,) = jobs[directory]["dns_sd_configs"]
        assert sd["names"] == [directory] and sd["port"] == 8080
    (static,) = jobs["kafka-exporter"]["static_configs"]
    host, port = static["targets"][0].split(":")
    assert host in compose["services"] and port in compose["services"][host]["expose"]
    mounted = [v for v in compose["services"]["prometheus"]["volumes"] if "prometheus.yml" in v]
    assert mounted == ["./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"]
