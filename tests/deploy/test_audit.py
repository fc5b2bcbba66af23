"""``make audit`` reports what it checked and never reads as a pass when it checked nothing.

The summariser (.ci/audit_report.py) is run on reports in pip-audit's JSON format: the live
audit itself needs pip-audit's vulnerability services, which this build machine cannot reach.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .deploy_helpers import ROOT

SCRIPT = ROOT / ".ci" / "audit_report.py"
CLEAN = {"name": "orjson", "version": "3.13.0", "vulns": []}
SKIPPED = {"name": "uv", "skip_reason": "Dependency not found on PyPI and could not be audited"}
VULNERABLE = {
    "name": "pip",
    "version": "23.2.1",
    "vulns": [
        {
            "id": "GHSA-4xh5-x5gv-qwph",
            "aliases": ["CVE-2025-8869"],
            "fix_versions": ["25.3"],
            "description": "tar symlinks",
        }
    ],
}


def _summarise(
    tmp_path: Path, deps: list[dict[str, Any]], audit_rc: int = 0, **env: str
) -> tuple[int, str]:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"dependencies": deps, "fixes": []}))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUDIT_")} | env
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(report), str(audit_rc)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return proc.returncode, proc.stdout


def test_a_finding_fails_and_is_listed_with_its_fix(tmp_path: Path) -> None:
    code, out = _summarise(tmp_path, [CLEAN, VULNERABLE, SKIPPED], audit_rc=1)
    assert code == 1
    assert out.splitlines()[0] == (
        "pip-audit: checked 2 of 3 packages; 1 known vulnerabilities in 1 packages"
    )
    assert "VULNERABLE pip 23.2.1: GHSA-4xh5-x5gv-qwph (CVE-2025-8869); fixed in 25.3" in out


@pytest.mark.parametrize("env", [{}, {"AUDIT_UNREACHABLE_OK": "1"}])
def test_a_finding_fails_even_where_services_are_unreachable(
    tmp_path: Path, env: dict[str, str]
) -> None:
    assert _summarise(tmp_path, [VULNERABLE], audit_rc=1, **env)[0] == 1


def test_checking_nothing_is_not_a_pass(tmp_path: Path) -> None:
    code, out = _summarise(tmp_path, [SKIPPED, SKIPPED | {"name": "pip"}])
    assert code == 3
    assert "checked 0 of 2 packages" in out and "NOT A PASS" in out


def test_unreachable_services_can_be_tolerated_but_still_say_so(tmp_path: Path) -> None:
    code, out = _summarise(tmp_path, [SKIPPED], AUDIT_UNREACHABLE_OK="1")
    assert code == 0 and "NOT A PASS" in out
    strict, _ = _summarise(tmp_path, [SKIPPED], AUDIT_UNREACHABLE_OK="1", AUDIT_STRICT="1")
    assert strict == 3


def test_partly_checked_passes_unless_strict_and_lists_the_rest(tmp_path: Path) -> None:
    code, out = _summarise(tmp_path, [CLEAN, SKIPPED])
    assert code == 0 and "not checked: uv" in out and "audit passed (1 packages" in out
    assert _summarise(tmp_path, [CLEAN, SKIPPED], AUDIT_STRICT="1")[0] == 3


def test_everything_checked_and_clean_passes(tmp_path: Path) -> None:
    code, out = _summarise(tmp_path, [CLEAN, CLEAN | {"name": "pydantic"}])
    assert code == 0
    assert out.splitlines() == [
        "pip-audit: checked 2 of 2 packages; 0 known vulnerabilities in 0 packages",
        "audit passed",
    ]


def test_no_report_is_a_failure(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text("")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(report), "2"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 1 and "AUDIT FAILED" in proc.stdout


def test_make_targets_and_ci_use_the_script() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "bash .ci/audit\n" in makefile and "bash .ci/audit --strict\n" in makefile
    assert "AUDIT_UNREACHABLE_OK=1 make audit" in (ROOT / ".ci" / "run").read_text()
