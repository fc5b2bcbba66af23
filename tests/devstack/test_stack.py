"""How the devstack configures the services for the local broker and for external servers."""

from __future__ import annotations

from coinstream.devstack.stack import LOCAL_FETCH_MAX_WAIT_MS, StackConfig, service_env


def _cfg(local: bool) -> StackConfig:
    return StackConfig(
        bootstrap="127.0.0.1:9092",
        database_url="postgresql://x@127.0.0.1/db",
        sim_http="http://127.0.0.1:8900",
        local_broker=local,
    )


def test_consumers_on_the_local_broker_wait_briefly_for_fetches() -> None:
    """Tansu answers a waiting fetch only when its max wait ends, so every service's
    consumers get a short one there; on external Kafka the services' default stays."""
    for name in ("normalizer", "sink-postgres", "alerts"):
        local = service_env(name, _cfg(local=True), 8080)
        assert local["KAFKA_FETCH_MAX_WAIT_MS"] == str(LOCAL_FETCH_MAX_WAIT_MS)
        assert "KAFKA_FETCH_MAX_WAIT_MS" not in service_env(name, _cfg(local=False), 8080)


def test_the_sink_flushes_by_its_own_defaults() -> None:
    """No fixed batch wait is imposed on the sink: it writes when its writer is idle."""
    env = service_env("sink-postgres", _cfg(local=True), 8080)
    assert not any(k.startswith("SINK_POSTGRES_BATCH_") for k in env)
