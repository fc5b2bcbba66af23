"""Choosing the servers the suite runs against, and the container backend's configuration.

The selection and the configuration run everywhere; the containers themselves need a Docker
engine (``make test-containers``, the hosted CI workflow) and skip here with that reason.
"""

from __future__ import annotations

import base64
import socket
import uuid
from typing import Any

import asyncpg
import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient

import backends
from coinstream.devstack.kafkatools import read_topic
from coinstream.runtime import KafkaProducer, KafkaSettings
from coinstream.runtime.kafka import connection_kwargs


def _never() -> str | None:
    raise AssertionError("the Docker engine must not be probed here")


def _docker(problem: str | None) -> Any:
    return lambda: problem


def test_unset_means_containers_when_docker_answers_else_local() -> None:
    with_docker = backends.plan({}, _docker(None))
    assert (with_docker.kafka, with_docker.postgres) == ("container", "container")
    without = backends.plan({}, _docker("no Docker engine: /var/run/docker.sock does not exist"))
    assert (without.kafka, without.postgres) == ("local", "local")
    assert "docker.sock does not exist" in without.reason


def test_local_never_probes_docker() -> None:
    chosen = backends.plan({"COINSTREAM_TEST_BACKEND": "local"}, _never)
    assert (chosen.kafka, chosen.postgres) == ("local", "local") and not chosen.containers


def test_containers_without_docker_is_an_error_that_says_why() -> None:
    with pytest.raises(backends.BackendError, match="needs a Docker engine: nothing at x"):
        backends.plan({"COINSTREAM_TEST_BACKEND": "containers"}, _docker("nothing at x"))
    chosen = backends.plan({"COINSTREAM_TEST_BACKEND": "Containers"}, _docker(None))
    assert chosen.containers and chosen.reason.endswith("a Docker engine answers")


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(backends.BackendError, match="'kafka': expected one of auto, local"):
        backends.plan({"COINSTREAM_TEST_BACKEND": "kafka"}, _never)


def test_servers_given_from_outside_are_kept() -> None:
    env = {"COINSTREAM_TEST_BACKEND": "containers", "KAFKA_BOOTSTRAP_SERVERS": "k:9092"}
    chosen = backends.plan(env, _docker(None))
    assert (chosen.kafka, chosen.postgres) == ("external", "container")
    both = backends.plan(env | {"DATABASE_URL": "postgresql://x/y"}, _never)
    assert (both.kafka, both.postgres) == ("external", "external")


def test_docker_problem_names_a_missing_socket_and_a_refusing_port() -> None:
    missing = backends.docker_problem({"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert missing == "no Docker engine: /nonexistent/docker.sock does not exist"
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        host = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    refused = backends.docker_problem({"DOCKER_HOST": host})
    assert refused is not None and refused.startswith(f"no Docker engine answers at {host}")


def test_images_are_compose_images_with_compose_overrides() -> None:
    compose = yaml.safe_load(backends.COMPOSE.read_text())["services"]
    kafka = backends.compose_image("kafka", {})
    assert compose["kafka"]["image"] == f"${{KAFKA_IMAGE:-{kafka}}}"
    assert kafka.startswith("apache/kafka:")
    assert backends.compose_image("postgres", {}).startswith("timescale/timescaledb:")
    assert backends.compose_image("kafka", {"KAFKA_IMAGE": "apache/kafka:4.1.0"}) == (
        "apache/kafka:4.1.0"
    )


def test_kafka_container_runs_kraft_like_compose_and_advertises_the_host_port() -> None:
    env = backends.kafka_environment("localhost", 32123)
    compose = yaml.safe_load(backends.COMPOSE.read_text())["services"]["kafka"]["environment"]
    for key in (
        "KAFKA_PROCESS_ROLES",
        "KAFKA_CONTROLLER_LISTENER_NAMES",
        "KAFKA_LISTENERS",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
        "KAFKA_INTER_BROKER_LISTENER_NAME",
    ):
        assert env[key] == str(compose[key]), key
    assert "EXTERNAL://localhost:32123" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    assert not [k for k in env if "ZOOKEEPER" in k]


def test_exported_sets_and_restores_a_variable() -> None:
    environ = {"KEEP": "1", "DATABASE_URL": "before"}
    with backends.exported(environ, "DATABASE_URL", "during"):
        assert environ["DATABASE_URL"] == "during"
    assert environ == {"KEEP": "1", "DATABASE_URL": "before"}
    with backends.exported(environ, "NEW", "x"):
        assert environ["NEW"] == "x"
    assert "NEW" not in environ


@pytest.mark.kafka
async def test_the_container_backend_is_apache_kafka_with_the_idempotent_producer(
    backend_plan: backends.Plan, kafka_settings: KafkaSettings
) -> None:
    """With containers, the suite's Kafka is the KRaft container and producers are
    idempotent (Tansu rejects that, so the local backend cannot exercise it)."""
    if backend_plan.kafka != "container":
        pytest.skip(f"needs a Docker engine (make test-containers); here: {backend_plan.reason}")
    assert kafka_settings.enable_idempotence
    admin = AIOKafkaAdminClient(**connection_kwargs(kafka_settings))
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    assert cluster["cluster_id"] == backends.KAFKA_CLUSTER_ID
    value = uuid.uuid4().hex.encode()
    async with KafkaProducer(kafka_settings) as producer:
        await producer.send_and_wait(kafka_settings.topics.prices, value, key=b"k")
    [record] = await read_topic(kafka_settings, kafka_settings.topics.prices)
    assert record.value == value


@pytest.mark.postgres
async def test_the_container_backend_is_timescaledb(
    backend_plan: backends.Plan, database_url: str
) -> None:
    if backend_plan.postgres != "container":
        pytest.skip(f"needs a Docker engine (make test-containers); here: {backend_plan.reason}")
    conn = await asyncpg.connect(database_url)
    try:
        available = await conn.fetchval(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
        )
    finally:
        await conn.close()
    assert available == 1
