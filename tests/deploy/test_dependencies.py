"""Declared requirements: one specifier per dependency across every package, satisfied by
the pins, with floors above releases that have published vulnerabilities."""

from __future__ import annotations

import importlib.metadata
import tomllib
from collections import defaultdict

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .deploy_helpers import ROOT

LOCAL = {
    canonicalize_name(tomllib.loads(p.read_text())["project"]["name"])
    for p in ROOT.glob("*/*/pyproject.toml")
}

# Releases with published advisories that a floor or a pin must exclude. Each entry: the
# newest affected release we know of (fixed in a later one).
KNOWN_VULNERABLE = {
    "aiohttp": "3.14.0",  # CVE-2026-54273 and others, fixed in 3.14.1
    "pip": "25.2",  # CVE-2025-8869 (tar symlinks), fixed in 25.3
    "setuptools": "78.1.0",  # CVE-2025-47273 (path traversal), fixed in 78.1.1
}


def _requirements() -> dict[str, dict[str, Requirement]]:
    """dependency -> {package directory: requirement}, optional extras included."""
    found: dict[str, dict[str, Requirement]] = defaultdict(dict)
    for pyproject in sorted(ROOT.glob("*/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        where = pyproject.parent.relative_to(ROOT).as_posix()
        extras = project.get("optional-dependencies", {}).values()
        for text in [*project.get("dependencies", []), *(r for e in extras for r in e)]:
            req = Requirement(text)
            found[canonicalize_name(req.name)][where] = req
    return found


def _pins() -> dict[str, Version]:
    pins = {}
    for raw in (ROOT / "constraints.txt").read_text().splitlines():
        line = raw.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_every_dependency_has_one_specifier_everywhere() -> None:
    differing = {
        name: {where: str(r.specifier) for where, r in uses.items()}
        for name, uses in _requirements().items()
        if len({str(r.specifier) for r in uses.values()}) > 1
    }
    assert differing == {}


def test_every_third_party_dependency_has_a_floor_and_a_satisfying_pin() -> None:
    pins = _pins()
    for name, uses in _requirements().items():
        if name in LOCAL:
            continue
        req = next(iter(uses.values()))
        assert any(s.operator in (">=", "==", "~=") for s in req.specifier), f"{name}: no floor"
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert req.specifier.contains(pins[name]), f"{name}=={pins[name]} outside {req}"


def test_local_packages_are_required_by_compatible_version_range() -> None:
    versions = {
        canonicalize_name(p["name"]): Version(p["version"])
        for p in (tomllib.loads(f.read_text())["project"] for f in ROOT.glob("*/*/pyproject.toml"))
    }
    for name, uses in _requirements().items():
        if name in LOCAL:
            for where, req in uses.items():
                assert any(s.operator == "<" for s in req.specifier), f"{where}: {req} unbounded"
                assert req.specifier.contains(versions[name]), f"{where}: {req}"


def test_floors_and_pins_exclude_releases_with_published_vulnerabilities() -> None:
    pins, requirements = _pins(), _requirements()
    for name, vulnerable in KNOWN_VULNERABLE.items():
        assert pins[name] > Version(vulnerable), f"constraints.txt pins a vulnerable {name}"
        for where, req in requirements.get(name, {}).items():
            assert not req.specifier.contains(vulnerable), f"{where}: {req} admits {vulnerable}"


def test_the_venv_runs_the_pinned_pip_and_setuptools() -> None:
    """make venv upgrades what `python -m venv` bundled (Python 3.11: setuptools 65.5.0)."""
    pins = _pins()
    for name in ("pip", "setuptools"):
        assert Version(importlib.metadata.version(name)) == pins[name], name
