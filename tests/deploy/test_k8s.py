"""The Kustomize base in deploy/k8s, checked offline against the vendored Kubernetes JSON
schemas (strict: unknown fields are errors) and against the services' own settings."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource

from .deploy_helpers import (
    DEPLOY,
    DEPLOYMENTS,
    ROOT,
    SCHEMAS,
    SERVICES,
    build_settings,
    load_json,
    load_yaml_documents,
    unknown_variables,
)

K8S = DEPLOY / "k8s"
KUBE_SCHEMAS = SCHEMAS / "kubernetes"


@cache
def registry() -> Registry:  # type: ignore[type-arg]
    definitions = Resource.from_contents(load_json(KUBE_SCHEMAS / "_definitions.json"))
    return definitions @ Registry()  # type: ignore[no-any-return]


def schema_file(doc: dict[str, Any]) -> Path:
    group, _, version = doc["apiVersion"].rpartition("/")
    parts = [doc["kind"].lower(), *([group.split(".")[0]] if group else []), version]
    return KUBE_SCHEMAS / ("-".join(parts) + ".json")


def schema_errors(doc: dict[str, Any]) -> list[str]:
    path = schema_file(doc)
    assert path.is_file(), f"no vendored schema for {doc['apiVersion']} {doc['kind']}"
    validator = jsonschema.Draft202012Validator(load_json(path), registry=registry())
    return [
        f"{doc['kind']}/{doc['metadata'].get('name')} {'/'.join(map(str, e.absolute_path))}: "
        f"{e.message[:200]}"
        for e in validator.iter_errors(doc)
    ]


@cache
def kustomization() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return data


@cache
def base_documents() -> list[dict[str, Any]]:
    docs = []
    for resource in kustomization()["resources"]:
        docs.extend(load_yaml_documents(K8S / resource))
    return docs


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in base_documents() if d["kind"] == kind}


def test_every_manifest_matches_the_kubernetes_schema() -> None:
    docs = base_documents()
    assert len(docs) >= 20
    errors = [e for doc in docs for e in schema_errors(doc)]
    assert errors == []


def test_strict_schema_rejects_unknown_fields_and_wrong_types() -> None:
    deployment = yaml.safe_load(yaml.safe_dump(of_kind("Deployment")["normalizer"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    deployment["spec"]["replicas"] = "two"
    assert len(schema_errors(deployment)) == 2


def test_generated_files_exist() -> None:
    for generator in kustomization()["configMapGenerator"]:
        for entry in generator["files"]:
            assert (K8S / entry.split("=")[-1]).is_file(), entry


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
def test_rendered_kustomization_is_valid() -> None:
    """`kubectl kustomize` (built-in kustomize, offline) renders the base; every object is valid,
    namespaced, and references to generated ConfigMaps carry the content hash."""
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert [e for d in docs for e in schema_errors(d)] == []
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "coinstream"
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "coinstream"
        if doc["kind"] in {"Deployment", "Job"}:
            for volume in doc["spec"]["template"]["spec"].get("volumes", []):
                if "configMap" in volume:
                    assert volume["configMap"]["name"] in names
    images = {
        c["image"]
        for d in docs
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"coinstream/{s}:0.1.0" for s in SERVICES}


def test_one_deployment_and_metrics_service_per_service() -> None:
    deployments, services = of_kind("Deployment"), of_kind("Service")
    assert set(deployments) == set(services) == set(DEPLOYMENTS)
    for name, svc in services.items():
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        (port,) = svc["spec"]["ports"]
        assert port["targetPort"] == "http" and port["name"].startswith("http")


def container(name: str) -> dict[str, Any]:
    (c,) = of_kind("Deployment")[name]["spec"]["template"]["spec"]["containers"]
    return c  # type: ignore[no-any-return]


def config_env(name: str) -> dict[str, str]:
    """What the container's ConfigMaps put in its environment."""
    maps = of_kind("ConfigMap")
    env: dict[str, str] = {}
    for source in container(name)["envFrom"]:
        if "configMapRef" in source:
            env |= maps[source["configMapRef"]["name"]]["data"]
    return env


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_probes_hit_the_health_endpoints(name: str) -> None:
    c = container(name)
    port_names = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert port_names == {"http": 8080}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    annotations = of_kind("Deployment")[name]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "8080"


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_resources_and_security(name: str) -> None:
    c = container(name)
    for section in ("requests", "limits"):
        assert set(c["resources"][section]) == {"cpu", "memory"}, section
    pod = of_kind("Deployment")[name]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    dockerfile = (ROOT / "services" / DEPLOYMENTS[name] / "Dockerfile").read_text()
    assert f"USER {pod['securityContext']['runAsUser']}:" in dockerfile
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], "a writable /tmp"
    assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_termination_grace_fits_the_shutdown_deadline(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings: Any = build_settings(DEPLOYMENTS[name], config_env(name), monkeypatch)
    grace = of_kind("Deployment")[name]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace >= settings.shutdown_timeout_s + 5


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_services_accept_their_configmaps(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every variable the ConfigMaps set is a real setting, and the values parse."""
    env = config_env(name)
    assert unknown_variables(DEPLOYMENTS[name], env) == []
    settings: Any = build_settings(DEPLOYMENTS[name], env, monkeypatch)
    assert settings.kafka.enable_idempotence is True
    assert settings.kafka.session_timeout_ms >= 6000
    assert settings.http.port == 8080
    assert settings.log_format == "json"


def test_secrets_hold_credentials_and_are_referenced() -> None:
    secrets = of_kind("Secret")
    referenced = set()
    for name in SERVICES:
        for source in container(name)["envFrom"]:
            if "secretRef" in source:
                referenced.add(source["secretRef"]["name"])
        assert not [
            e for e in container(name).get("env", []) if "value" in e and "KEY" in e["name"]
        ]
    assert referenced == set(secrets)
    for secret in secrets.values():
        assert not secret.get("data") and not secret.get("stringData"), "never commit values"
    assert {
        s["secretRef"]["name"] for s in container("ingest-rest")["envFrom"] if "secretRef" in s
    } >= {"coinstream-ingest-rest"}
    assert {s["secretRef"]["name"] for s in container("alerts")["envFrom"] if "secretRef" in s} >= {
        "coinstream-alerts",
        "coinstream-database",
    }


def test_alert_rules_configmap_is_valid_and_its_secrets_are_documented() -> None:
    from coinstream.alerts.rules import load_rules

    rules = load_rules(K8S / "alerts" / "alert-rules.yaml")
    assert rules.active_rules
    documented = of_kind("Secret")["coinstream-alerts"]["metadata"]["annotations"]
    for env_name in rules.secret_names().values():
        assert env_name in documented["coinstream.io/keys"]
    mount = {m["name"]: m["mountPath"] for m in container("alerts")["volumeMounts"]}["rules"]
    assert config_env("alerts")["ALERTS_RULES_FILE"] == f"{mount}/alert-rules.yaml"


def test_consumer_groups_fit_the_partitions() -> None:
    """Replicas beyond the partition count would sit idle: keep them within it."""
    (job,) = of_kind("Job").values()
    env = {
        e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    partitions = int(env["TOPIC_PARTITIONS"])
    for name, deployment in of_kind("Deployment").items():
        assert deployment["spec"]["replicas"] <= partitions, name


def test_singletons_never_overlap_during_a_rollout() -> None:
    """alerts (cross-symbol rules) runs one pod at a time in the base."""
    alerts = of_kind("Deployment")["alerts"]
    assert alerts["spec"]["replicas"] == 1
    assert alerts["spec"]["strategy"]["type"] == "Recreate"


def test_ingest_rest_rolls_like_any_consumer_group() -> None:
    """Replicas share ingest-rest's jobs and budgets through the work group, so a rollout may
    overlap old and new pods; the base keeps one replica."""
    deployment = of_kind("Deployment")["ingest-rest"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"].get("strategy", {}).get("type", "RollingUpdate") == "RollingUpdate"


def test_ingest_ws_rolls_like_any_consumer_group() -> None:
    """Replicas share ingest-ws's streams through the work group (a moved stream resumes from
    its checkpoint), so a rollout may overlap old and new pods; the base keeps one replica."""
    deployment = of_kind("Deployment")["ingest-ws"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"].get("strategy", {}).get("type", "RollingUpdate") == "RollingUpdate"


def test_topic_job_runs_the_shared_script() -> None:
    (job,) = of_kind("Job").values()
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert re.fullmatch(r"apache/kafka:[\d.]+", c["image"])
    assert c["command"][-1] == "/opt/coinstream/create-topics.sh"
    generated = {g["name"]: g["files"] for g in kustomization()["configMapGenerator"]}
    assert generated["coinstream-topics-script"] == ["topics/create-topics.sh"]
