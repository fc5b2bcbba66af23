"""The provisioned Grafana dashboard queries metrics the services really expose."""

from __future__ import annotations

import ast
import re
from functools import cache
from typing import Any

import pytest
import yaml

from .deploy_helpers import DEPLOY, ROOT, load_json

GRAFANA = DEPLOY / "grafana"
# kafka-exporter's consumer-group metric and its labels
EXPORTER = {"kafka_consumergroup_lag": {"consumergroup", "topic", "partition"}}
PROMQL_WORDS = {"by", "without", "sum", "min", "max", "rate", "increase", "time", "clamp_min"}
SUFFIXES = {
    "Counter": ("_total", "_created"),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "Summary": ("_sum", "_count", "_created", ""),
}


@cache
def exposed_metrics() -> dict[str, set[str]]:
    """Series name -> label names, read from every service's metrics.py (statically)."""
    series: dict[str, set[str]] = {}
    for path in ROOT.glob("services/*/src/coinstream/*/metrics.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            kind = node.func.id
            if kind not in SUFFIXES or not node.args:
                continue
            name = ast.literal_eval(node.args[0])
            labels: list[str] = []
            if len(node.args) >= 3:
                labels = ast.literal_eval(node.args[2])
            for kw in node.keywords:
                if kw.arg == "labelnames":
                    labels = ast.literal_eval(kw.value)
            base = name.removesuffix("_total") if kind == "Counter" else name
            extra = {"le"} if kind == "Histogram" else set()
            for suffix in SUFFIXES[kind]:
                series[base + suffix] = set(labels) | extra
    return series


@cache
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = load_json(GRAFANA / "dashboards" / "coinstream.json")
    return data


def targets() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def test_services_expose_metrics_at_all() -> None:
    names = exposed_metrics()
    for prefix in ("ingest_ws_", "ingest_rest_", "normalizer_", "sink_postgres_", "alerts_"):
        assert any(n.startswith(prefix) for n in names), prefix


@pytest.mark.parametrize(("title", "expr"), targets())
def test_query_uses_exposed_metrics_and_labels(title: str, expr: str) -> None:
    exposed = exposed_metrics() | EXPORTER
    body = re.sub(r'\{[^}]*\}|\[[^\]]*\]|"[^"]*"', " ", expr)
    metrics = [
        w
        for w in re.findall(r"[a-z_][a-z0-9_]*", body)
        if w not in PROMQL_WORDS and "_" in w and not w.startswith("histogram_")
    ]
    assert metrics, f"{title}: no metric in {expr}"
    labels: set[str] = set()
    for metric in metrics:
        assert metric in exposed, f"{title}: no service exposes {metric}"
        labels |= exposed[metric]
    for group in re.findall(r"by \(([^)]*)\)", expr):
        for label in (g.strip() for g in group.split(",")):
            assert label in labels, f"{title}: {label} is not a label of {metrics}"
    for selector in re.findall(r"\{([^}]*)\}", expr):
        for label in re.findall(r"([a-z_]+)\s*=~?", selector):
            assert label in labels, f"{title}: {label} is not a label of {metrics}"


def test_dashboard_covers_the_required_topics() -> None:
    rows = [p["title"] for p in dashboard()["panels"] if p["type"] == "row"]
    assert rows == ["Throughput", "Consumer lag", "Feed health", "Rate budgets", "Alerts"]
    exprs = " ".join(e for _, e in targets())
    for needed in ("alerts_notifications_sent_total", "kafka_consumergroup_lag", "budget"):
        assert needed in exprs


def test_panels_use_the_provisioned_datasource() -> None:
    (source,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )["datasources"]
    for panel in dashboard()["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == source["uid"]
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_provider_points_at_the_mounted_folder() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    (provider,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "coinstream.yaml").read_text()
    )["providers"]
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
