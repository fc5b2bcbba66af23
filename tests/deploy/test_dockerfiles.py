"""Dockerfile lint: slim Python 3.11, multi-stage, non-root, a curl-free health check, and only
the image's own package (and the libraries) copied and installed from its pyproject.toml."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from coinstream.runtime import HealthServer, HttpSettings

from .deploy_helpers import ROOT, instructions

SERVICE_DIRS = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))
LIBS = {"libs/schemas", "libs/runtime"}


@dataclass(frozen=True)
class Image:
    directory: str  # e.g. services/normalizer
    module: str  # python -m <module>
    env_prefix: str | None  # <PREFIX>_ of the service settings; None for the simulator
    copies: frozenset[str]  # what the build stage may COPY from the context

    @property
    def dockerfile(self) -> Path:
        return ROOT / self.directory / "Dockerfile"


def _service(name: str) -> Image:
    return Image(
        f"services/{name}",
        "coinstream." + name.replace("-", "_"),
        name.upper().replace("-", "_") + "_",
        frozenset({"constraints.txt", *LIBS, f"services/{name}"}),
    )


IMAGES = [_service(n) for n in SERVICE_DIRS] + [
    Image(
        "tools/market-sim",
        "coinstream.marketsim",
        None,
        frozenset({"constraints.txt", "tools/market-sim"}),
    )
]


def stages(path: Path) -> list[list[tuple[str, str]]]:
    """Instructions grouped by build stage (the first group holds ARGs before the first FROM)."""
    groups: list[list[tuple[str, str]]] = [[]]
    for instr in instructions(path):
        if instr[0] == "FROM":
            groups.append([])
        groups[-1].append(instr)
    return groups


def copy_sources(args: str) -> list[str]:
    parts = [p for p in shlex.split(args) if not p.startswith("--")]
    return [p.rstrip("/").removeprefix("./") for p in parts[:-1]]


@pytest.fixture(params=IMAGES, ids=lambda i: i.directory)
def image(request: pytest.FixtureRequest) -> Image:
    return request.param  # type: ignore[no-any-return]


def test_every_service_has_a_dockerfile() -> None:
    assert len(SERVICE_DIRS) >= 5
    for img in IMAGES:
        assert img.dockerfile.is_file(), f"missing {img.dockerfile.relative_to(ROOT)}"


def test_base_image_is_slim_python_311(image: Image) -> None:
    args = dict(a.split("=", 1) for k, a in stages(image.dockerfile)[0] if k == "ARG")
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", args["PYTHON_IMAGE"])
    froms = [a for k, a in instructions(image.dockerfile) if k == "FROM"]
    assert all(f.split()[0] == "${PYTHON_IMAGE}" for f in froms), froms


def test_multi_stage_and_final_stage_takes_only_the_venv(image: Image) -> None:
    groups = stages(image.dockerfile)
    assert len(groups) >= 3, "expected a build stage and a runtime stage"
    final = groups[-1]
    copies = [a for k, a in final if k in {"COPY", "ADD"}]
    assert copies == ["--from=build /opt/venv /opt/venv"]
    assert not any(k == "RUN" and "install" in a and "useradd" not in a for k, a in final)


def test_runs_as_a_numeric_non_root_user_in_its_own_workdir(image: Image) -> None:
    users = [a for k, a in stages(image.dockerfile)[-1] if k == "USER"]
    assert users, "the runtime stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "use a numeric non-root uid (runAsNonRoot checks it)"
    workdirs = [a for k, a in stages(image.dockerfile)[-1] if k == "WORKDIR"]
    assert workdirs, "set a WORKDIR the user can write to"
    runs = " ".join(a for k, a in stages(image.dockerfile)[-1] if k == "RUN")
    assert f"install -d -o {uid} -g {uid} {workdirs[-1]}" in runs, "the user owns its WORKDIR"


def test_no_curl_or_wget(image: Image) -> None:
    text = " ".join(args for _, args in instructions(image.dockerfile))
    assert "curl" not in text and "wget" not in text


def healthcheck_command(image: Image) -> list[str]:
    checks = [a for k, a in stages(image.dockerfile)[-1] if k == "HEALTHCHECK"]
    assert len(checks) == 1, "exactly one HEALTHCHECK in the runtime stage"
    _, _, cmd = checks[0].partition("CMD ")
    command = json.loads(cmd)
    assert command[:2] == ["python", "-c"], "exec form with the image's python"
    compile(command[2], "<healthcheck>", "exec")
    return list(command)


def test_healthcheck_hits_the_health_endpoint(image: Image) -> None:
    code = healthcheck_command(image)[2]
    if image.env_prefix is None:
        assert "/_sim/state" in code
    else:
        assert "/healthz" in code
        assert f"{image.env_prefix}HTTP__PORT" in code
        assert "'8080'" in code and HttpSettings().port == 8080


@pytest.mark.parametrize("img", [i for i in IMAGES if i.env_prefix], ids=lambda i: i.directory)
async def test_healthcheck_command_passes_when_healthy_and_fails_when_down(img: Image) -> None:
    """Run the image's HEALTHCHECK command against a real HealthServer, then against nothing."""
    command = healthcheck_command(img)
    command[0] = sys.executable

    async def check(env: dict[str, str]) -> tuple[int, bytes]:
        proc = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode is not None
        return proc.returncode, out

    async with HealthServer(HttpSettings(host="127.0.0.1", port=0)) as server:
        env = {**os.environ, f"{img.env_prefix}HTTP__PORT": str(server.port)}
        code, out = await check(env)
        assert code == 0, out.decode()
    code, _ = await check(env)
    assert code != 0


def test_copies_only_its_own_package_and_the_libraries(image: Image) -> None:
    sources: set[str] = set()
    for keyword, args in instructions(image.dockerfile):
        if keyword in {"COPY", "ADD"} and "--from=" not in args:
            assert keyword == "COPY", "use COPY, not ADD"
            sources.update(copy_sources(args))
    assert sources == image.copies


def install_arguments(image: Image) -> list[str]:
    runs = [a for k, a in instructions(image.dockerfile) if k == "RUN" and "uv pip install" in a]
    assert len(runs) == 1, "exactly one `uv pip install`"
    words = [w for w in shlex.split(runs[0]) if not w.startswith("--mount=")]
    words = words[words.index("install") + 1 :]
    positional: list[str] = []
    takes_value = {"--python", "-c", "--constraint", "--build-constraint"}
    it = iter(words)
    options: list[str] = []
    for word in it:
        if word in takes_value:
            options.append(f"{word} {next(it)}")
        elif word.startswith("-"):
            options.append(word)
        else:
            positional.append(word)
    assert "-c constraints.txt" in options, "install with -c constraints.txt"
    assert "--build-constraint constraints.txt" in options
    return positional


def test_installs_local_packages_only_so_deps_come_from_pyproject(image: Image) -> None:
    """No hand-copied dependency list: only local package directories are named."""
    positional = install_arguments(image)
    paths = {re.sub(r"\$\{EXTRAS.*\}$", "", p).removeprefix("./") for p in positional}
    assert paths == image.copies - {"constraints.txt"}
    for path in paths:
        assert (ROOT / path / "pyproject.toml").is_file()
    pip_installs = [
        a for k, a in instructions(image.dockerfile) if k == "RUN" and "pip install" in a
    ]
    for run in pip_installs:
        if "uv pip install" not in run:
            assert re.search(r'pip install "uv==\$\{UV_VERSION\}"', run), run


def test_uv_version_matches_the_makefile(image: Image) -> None:
    pinned = re.search(r"uv==([\d.]+)", (ROOT / "Makefile").read_text())
    assert pinned
    assert f"ARG UV_VERSION={pinned.group(1)}" in image.dockerfile.read_text()


def test_entrypoint_runs_the_package(image: Image) -> None:
    entry = [a for k, a in stages(image.dockerfile)[-1] if k == "ENTRYPOINT"]
    assert len(entry) == 1
    command = json.loads(entry[0])
    assert command[:3] == ["python", "-m", image.module]
    package = image.module.split(".")[-1]
    main = ROOT / image.directory / "src" / "coinstream" / package / "__main__.py"
    assert main.is_file(), f"{main.relative_to(ROOT)} does not exist"


# --- .dockerignore -------------------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if pattern.startswith("/", i):
                out = out[:-2] + "(?:.*/)?"
                i += 1
            continue
        c = pattern[i]
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + "(?:/.*)?")


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        rules.append((include, _pattern(line.lstrip("!").strip("/"))))
    return rules


def in_context(rel: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last matching pattern decides; no match means the file is sent."""
    sent = True
    for include, pattern in rules:
        if pattern.fullmatch(rel):
            sent = include
    return sent


def context_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    return [f for f in listed if f and (ROOT / f).exists()]


def test_dockerignore_sends_only_packages_and_pins() -> None:
    rules = dockerignore_rules()
    sent = [f for f in context_files() if in_context(f, rules)]
    allowed = (
        "constraints.txt",
        "libs/schemas/",
        "libs/runtime/",
        "services/",
        "tools/market-sim/",
    )
    assert sent, "nothing would be sent"
    assert all(f.startswith(allowed) for f in sent), [f for f in sent if not f.startswith(allowed)]
    assert not [f for f in sent if "__pycache__" in f or f.endswith(".pyc")]
    assert not [f for f in sent if f.startswith("services/") and "/tests/" in f]


def test_dockerignore_keeps_everything_the_images_copy() -> None:
    rules = dockerignore_rules()
    files = context_files()
    for img in IMAGES:
        for source in img.copies:
            needed = [f for f in files if f == source or f.startswith(source + "/")]
            needed = [f for f in needed if not f.endswith("Dockerfile")]
            assert needed, source
            missing = [f for f in needed if not in_context(f, rules)]
            assert not missing, f"{img.directory}: .dockerignore drops {missing[:5]}"
            assert any(f.endswith("pyproject.toml") for f in needed) or source == "constraints.txt"


def test_dockerignore_matcher_follows_docker_rules() -> None:
    """The matcher itself: last rule wins, ** spans directories, a directory covers its files."""
    rules = [(False, _pattern("*")), (True, _pattern("libs")), (False, _pattern("**/x.pyc"))]
    assert not in_context("README.md", rules)
    assert in_context("libs/a/b.py", rules)
    assert not in_context("libs/a/x.pyc", rules)
