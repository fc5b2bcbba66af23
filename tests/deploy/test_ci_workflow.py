"""The hosted CI workflow (it cannot run here: it needs GitHub's runners and a Docker engine)
runs .ci/run, the container suite and the strict audit, on Python 3.11."""

from __future__ import annotations

from typing import Any

import yaml

from .deploy_helpers import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def _steps(job: dict[str, Any]) -> list[str]:
    return [str(step.get("run", "")) for step in job["steps"]]


def test_the_workflow_runs_ci_run_the_container_suite_and_the_strict_audit() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    jobs = doc["jobs"]
    runs = {name: _steps(job) for name, job in jobs.items()}
    commands = [c for steps in runs.values() for c in steps]
    assert "bash .ci/run" in commands
    assert "make test-containers" in commands
    assert "make audit-strict" in commands
    for name, job in jobs.items():
        assert str(job["runs-on"]).startswith("ubuntu-"), name
        assert job["timeout-minutes"] <= 90, name
        setup = [
            s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/setup-python")
        ]
        assert setup and setup[0]["with"]["python-version"] == "3.11", name
    ci_run = next(j for j in jobs.values() if "bash .ci/run" in _steps(j))
    step = next(s for s in ci_run["steps"] if s.get("run") == "bash .ci/run")
    assert step["env"]["COINSTREAM_TEST_BACKEND"] == "local", ".ci/run keeps the local servers"


def test_the_workflow_names_no_package_registry() -> None:
    text = WORKFLOW.read_text().lower()
    assert "index-url" not in text and "pypi" not in text
