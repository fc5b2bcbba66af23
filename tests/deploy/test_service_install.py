"""Every image's package installs alone, from its own pyproject.toml, and imports.

For each service (and the simulator) a fresh virtualenv gets exactly what its Dockerfile
installs: the service plus the local libraries it declares, pinned by constraints.txt. Then
every module of the package is imported there, which catches an import of something the
service does not declare, and the installed set is compared with the closure of the declared
requirements, which catches anything extra.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import distributions, packages_distributions
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .deploy_helpers import ROOT, instructions

pytestmark = pytest.mark.slow

UV = Path(sys.executable).parent / "uv"
BOOTSTRAP = {"pip", "setuptools", "wheel"}
TEST_EXTRAS = {"test", "tests", "dev", "docs"}

# Runs inside the fresh venv (standard library only): import every module of a package, check
# the imports of __main__ modules without running them, and dump the installed distributions.
CHECKER = r"""
import ast, importlib, importlib.metadata as md, importlib.util, json, pkgutil, sys
package, optional = sys.argv[1], set(json.loads(sys.argv[2]))
imported, skipped, failures = [], [], []

def attempt(name, action):
    try:
        action()
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in optional:
            skipped.append(name)
        else:
            failures.append(f"{name}: {exc!r}")
    except Exception as exc:
        failures.append(f"{name}: {exc!r}")
    else:
        imported.append(name)

def main_imports(name):
    tree = ast.parse(open(importlib.util.find_spec(name).origin).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                importlib.import_module(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            importlib.import_module(node.module)

root = importlib.import_module(package)
names = [package] + [m.name for m in pkgutil.walk_packages(
    root.__path__, package + ".", onerror=lambda n: failures.append(f"{n}: walk failed"))]
for name in names:
    if name.endswith(".__main__"):
        attempt(name, lambda n=name: main_imports(n))
    else:
        attempt(name, lambda n=name: importlib.import_module(n))
dists = {d.metadata["Name"]: d.requires or [] for d in md.distributions()}
print(json.dumps({"imported": imported, "skipped": skipped, "failures": failures,
                  "dists": dists}))
"""


@cache
def local_projects() -> dict[str, Path]:
    """Distribution name -> directory, for every package in this repository."""
    found: dict[str, Path] = {}
    for pyproject in ROOT.glob("*/*/pyproject.toml"):
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
        found[canonicalize_name(name)] = pyproject.parent
    return found


def project(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((directory / "pyproject.toml").read_text())["project"]
    return data


def local_closure(directory: Path) -> list[Path]:
    """The directory plus every local package it declares, transitively (never from an index)."""
    todo, seen = [directory], [directory]
    while todo:
        for dep in project(todo.pop()).get("dependencies", []):
            path = local_projects().get(canonicalize_name(Requirement(dep).name))
            if path is not None and path not in seen:
                seen.append(path)
                todo.append(path)
    return seen


@dataclass
class Variant:
    directory: Path
    package: str
    extras: tuple[str, ...] = ()
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        rel = self.directory.relative_to(ROOT).as_posix()
        return rel + (f"[{','.join(self.extras)}]" if self.extras else "")


def runtime_extras(directory: Path) -> list[str]:
    """Extras an image can be built with (its Dockerfile has ``ARG EXTRAS``), tests excluded."""
    if "ARG EXTRAS" not in (directory / "Dockerfile").read_text():
        return []
    extras = project(directory).get("optional-dependencies", {})
    return [e for e in extras if e not in TEST_EXTRAS]


def variants() -> list[Variant]:
    out = []
    for directory in sorted((ROOT / "services").glob("*/")):
        if not (directory / "pyproject.toml").is_file():
            continue
        package = "coinstream." + directory.name.replace("-", "_")
        out.append(Variant(directory, package))
        for extra in runtime_extras(directory):
            out.append(Variant(directory, package, (extra,)))
    out.append(Variant(ROOT / "tools" / "market-sim", "coinstream.marketsim"))
    return out


def optional_modules(variant: Variant) -> list[str]:
    """Top-level modules that only the extras not installed in this variant bring (with their
    own dependencies, as this test environment has them installed)."""
    missing = {e for e in runtime_extras(variant.directory) if e not in variant.extras}
    if not missing:
        return []
    here = {d.metadata["Name"]: d.requires or [] for d in distributions()}
    name = project(variant.directory)["name"]
    with_all = closure(here, [Requirement(f"{name}[{','.join(sorted(missing))}]")])
    only_extra = with_all - closure(here, [Requirement(name)])
    return sorted(
        module
        for module, owners in packages_distributions().items()
        if any(canonicalize_name(o) in only_extra for o in owners)
    )


def install_and_check(variant: Variant, base: Path) -> dict[str, Any]:
    venv = base / re.sub(r"[^a-z0-9]+", "-", variant.id)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}

    def run(command: list[str], cwd: Path = base) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, env=env, cwd=cwd, capture_output=True, text=True, timeout=240, check=False
        )

    made = run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    if made.returncode != 0:
        return {"install_error": made.stderr[-3000:]}
    python = venv / "bin" / "python"
    targets = [str(p) for p in local_closure(variant.directory)]
    if variant.extras:
        targets[0] += f"[{','.join(variant.extras)}]"
    constraints = ["-c", "constraints.txt", "--build-constraint", "constraints.txt"]
    install = run(
        [str(UV), "pip", "install", "--python", str(python), *constraints, *targets], ROOT
    )
    if install.returncode != 0:
        return {"install_error": install.stderr[-3000:]}
    check = run(
        [str(python), "-c", CHECKER, variant.package, json.dumps(optional_modules(variant))]
    )
    if check.returncode != 0:
        return {"install_error": check.stderr[-3000:]}
    result: dict[str, Any] = json.loads(check.stdout)
    result["targets"] = targets
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Variant]:
    """All variants installed in parallel (uv's cache makes each take seconds)."""
    base = tmp_path_factory.mktemp("venvs")
    todo = variants()
    with ThreadPoolExecutor(max_workers=4) as pool:
        for variant, result in zip(
            todo, pool.map(lambda v: install_and_check(v, base), todo), strict=True
        ):
            variant.result = result
    return {v.id: v for v in todo}


def closure(dists: dict[str, list[str]], roots: list[Requirement]) -> set[str]:
    """Names of the distributions the roots require, transitively (markers evaluated)."""
    by_name = {canonicalize_name(n): reqs for n, reqs in dists.items()}
    needed: set[str] = set()
    todo = [(r, frozenset(r.extras)) for r in roots]
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        key = f"{name}[{','.join(sorted(extras))}]"
        if key in needed:
            continue
        needed.add(key)
        for text in by_name.get(name, []):
            child = Requirement(text)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(e) for e in envs):
                todo.append((child, frozenset(child.extras)))
    return {k.split("[")[0] for k in needed}


@pytest.mark.parametrize("variant_id", [v.id for v in variants()])
def test_installs_alone_and_every_module_imports(
    installed: dict[str, Variant], variant_id: str
) -> None:
    variant = installed[variant_id]
    result = variant.result
    assert "install_error" not in result, result.get("install_error")
    assert result["failures"] == [], "undeclared or broken imports"
    assert f"{variant.package}.__main__" in result["imported"]
    if variant.extras:
        assert result["skipped"] == [], "with its extras every module must import"


@pytest.mark.parametrize("variant_id", [v.id for v in variants()])
def test_installs_exactly_the_declared_closure(
    installed: dict[str, Variant], variant_id: str
) -> None:
    variant = installed[variant_id]
    result = variant.result
    assert "install_error" not in result, result.get("install_error")
    dists = result["dists"]
    name = project(variant.directory)["name"]
    roots = [Requirement(f"{name}[{','.join(variant.extras)}]" if variant.extras else name)]
    roots += [Requirement(project(Path(p))["name"]) for p in result["targets"][1:]]
    expected = closure(dists, roots)
    present = {canonicalize_name(n) for n in dists} - BOOTSTRAP
    assert present == expected, {"extra": present - expected, "missing": expected - present}


def test_dockerfiles_install_the_same_local_packages() -> None:
    """What each Dockerfile names is the local closure of the service's declared deps."""
    for variant in variants():
        if variant.extras:
            continue
        runs = instructions(variant.directory / "Dockerfile")
        (install,) = [a for k, a in runs if k == "RUN" and "uv pip install" in a]
        named = {p.removeprefix("./") for p in re.findall(r"\./[\w/-]+", install)}
        expected = {p.relative_to(ROOT).as_posix() for p in local_closure(variant.directory)}
        assert named == expected, variant.id
