"""Summarise a pip-audit JSON report for .ci/audit: counts, findings, and the exit code.

Usage: audit_report.py REPORT.json PIP_AUDIT_EXIT_CODE  (environment: AUDIT_STRICT=1,
AUDIT_UNREACHABLE_OK=1; see .ci/audit for what the exit codes mean).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

FINDINGS, NOT_A_PASS = 1, 3


def summarise(deps: list[dict[str, Any]], audit_rc: int, strict: bool, unreachable_ok: bool) -> int:
    checked = [d for d in deps if "skip_reason" not in d]
    skipped = [d for d in deps if "skip_reason" in d]
    found = [(d, v) for d in checked for v in d.get("vulns", [])]
    print(
        f"pip-audit: checked {len(checked)} of {len(deps)} packages; {len(found)} known "
        f"vulnerabilities in {len({d['name'] for d, _ in found})} packages"
    )
    for d, v in found:
        fixes = ", ".join(v.get("fix_versions", [])) or "no fixed release"
        aliases = f" ({', '.join(v['aliases'])})" if v.get("aliases") else ""
        print(f"  VULNERABLE {d['name']} {d['version']}: {v['id']}{aliases}; fixed in {fixes}")
    for d in skipped:
        print(f"  not checked: {d['name']}: {d['skip_reason']}")
    if found:
        return FINDINGS
    if deps and not checked:
        print(
            f"NOT A PASS: none of the {len(deps)} packages could be checked (pip-audit's "
            "vulnerability services are unreachable from this machine). Run 'make "
            "audit-strict' where they are reachable; the hosted CI workflow does."
        )
        return 0 if unreachable_ok and not strict else NOT_A_PASS
    if skipped and strict:
        print(f"NOT A PASS: {len(skipped)} packages could not be checked (--strict).")
        return NOT_A_PASS
    if audit_rc not in (0, 1):
        print(f"AUDIT FAILED: pip-audit exited {audit_rc}")
        return FINDINGS
    unchecked = f" ({len(skipped)} packages not checked, listed above)" if skipped else ""
    print(f"audit passed{unchecked}")
    return 0


def main(argv: list[str]) -> int:
    path, audit_rc = Path(argv[1]), int(argv[2])
    try:
        deps = json.loads(path.read_text())["dependencies"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"AUDIT FAILED: pip-audit gave no report (exit {audit_rc}): {exc!r}")
        return FINDINGS
    return summarise(
        deps,
        audit_rc,
        strict=os.environ.get("AUDIT_STRICT") == "1",
        unreachable_ok=os.environ.get("AUDIT_UNREACHABLE_OK") == "1",
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
