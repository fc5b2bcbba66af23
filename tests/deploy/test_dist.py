"""``make dist``: a versioned wheel and sdist of every package, and the schema package
installs from its wheel alone, as docs/subscribers.md tells subscribers to do."""

from __future__ import annotations

import email
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .deploy_helpers import ROOT
from .test_consume_prices_example import trades

pytestmark = pytest.mark.slow

UV = Path(sys.executable).parent / "uv"
PROJECTS = sorted(p.parent for p in ROOT.glob("*/*/pyproject.toml"))


def _project(directory: Path) -> dict[str, object]:
    data: dict[str, object] = tomllib.loads((directory / "pyproject.toml").read_text())["project"]
    return data


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        ["make", "-s", "--no-print-directory", "dist", f"DIST={out}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(zf.read(name))


def _entry_points(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        return zf.read(names[0]).decode() if names else ""


def test_every_package_has_a_versioned_wheel_and_sdist(dist: Path) -> None:
    assert len(PROJECTS) == 9
    for directory in PROJECTS:
        project = _project(directory)
        stem = f"{str(project['name']).replace('-', '_')}-{project['version']}"
        wheel = dist / f"{stem}-py3-none-any.whl"
        assert wheel.exists(), f"{directory.name}: no {wheel.name}"
        assert (dist / f"{stem}.tar.gz").exists()
        meta = _metadata(wheel)
        assert (meta["Name"], meta["Version"]) == (project["name"], project["version"])
        declared = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}  # type: ignore[attr-defined]
        shipped = {
            canonicalize_name(Requirement(r).name)
            for r in meta.get_all("Requires-Dist") or []
            if "extra ==" not in r
        }
        assert shipped == declared, directory.name


def test_service_wheels_carry_their_console_scripts(dist: Path) -> None:
    for name in ("ingest-rest", "ingest-ws", "normalizer", "sink-postgres", "alerts"):
        wheel = next(dist.glob(f"coinstream_{name.replace('-', '_')}-*.whl"))
        assert f"coinstream-{name} = " in _entry_points(wheel), name


def test_a_published_package_has_a_changelog_for_its_version() -> None:
    for directory in PROJECTS:
        if directory.parent.name == "tools":
            continue  # the simulator and the devstack are not published
        changelog = directory / "CHANGELOG.md"
        assert changelog.exists(), f"{directory.name}: no CHANGELOG.md"
        text = changelog.read_text()
        version = str(_project(directory)["version"])
        assert f"## [{version}]" in text or "## [Unreleased]" in text


def test_the_schema_wheel_installs_alone_and_decodes(dist: Path, tmp_path: Path) -> None:
    """What a subscriber does: a fresh environment, the wheel, pydantic from the index."""
    venv = tmp_path / "venv"
    subprocess.run([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    wheel = next(dist.glob("coinstream_schemas-*.whl"))
    pins = ["-c", str(ROOT / "constraints.txt")]
    subprocess.run(
        [str(UV), "pip", "install", "--quiet", "--python", str(python), *pins, str(wheel)],
        check=True,
        timeout=300,
    )
    [event] = trades("BTC-USDT", ["94012.35"])
    code = (
        "import sys; from coinstream.schemas import Topics, decode_event; "
        "e = decode_event(sys.stdin.buffer.read()); "
        "print(Topics().prices, type(e).__name__, e.symbol, e.price)"
    )
    out = subprocess.run(
        [str(python), "-c", code],
        input=event.model_dump_json().encode(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert out.stdout.decode().split() == [
        "coinstream.prices.v1",
        "PriceEvent",
        "BTC-USDT",
        "94012.35",
    ]


def test_the_subscriber_guide_names_the_wheel_make_dist_builds(dist: Path) -> None:
    wheel = next(dist.glob("coinstream_schemas-*.whl"))
    guide = (ROOT / "docs" / "subscribers.md").read_text()
    assert f"dist/{wheel.name}" in guide
    assert "#subdirectory=libs/schemas" in guide
