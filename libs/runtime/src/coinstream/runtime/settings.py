"""Settings shared by every service. Each service subclasses ``ServiceSettings`` once."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from coinstream.schemas import Topics


class KafkaSettings(BaseSettings):
    """Kafka connection and client tuning, read from ``KAFKA_*`` (shared by all services).

    ``enable_idempotence`` must stay true on Apache Kafka. The local Tansu broker rejects
    aiokafka's InitProducerId request, so the local stack and tests set it to false.
    """

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "coinstream"
    client_id: str | None = None
    enable_idempotence: bool = True
    linger_ms: int = Field(5, ge=0)
    max_batch_size: int = Field(1_048_576, gt=0)
    max_record_bytes: int = Field(
        1_000_000,
        gt=1024,
        description="Largest record a service produces; bigger ones are dead-lettered in "
        "bounded form. Keep it below the broker's message.max.bytes (1048588 by default).",
    )
    compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = None
    request_timeout_ms: int = Field(30_000, gt=0)
    session_timeout_ms: int = Field(10_000, gt=0, description="Apache Kafka needs >= 6000")
    heartbeat_interval_ms: int = Field(3_000, gt=0)
    max_poll_interval_ms: int = Field(300_000, gt=0)
    fetch_max_wait_ms: int = Field(
        500,
        gt=0,
        description="Longest a fetch waits at the broker for new records. Apache Kafka answers "
        "as soon as records arrive, so the default costs no latency there; the local Tansu "
        "broker always waits this long when a consumer has caught up, so the devstack sets 50",
    )
    topic_partitions: int = Field(3, gt=0, description="Partitions for topics we create")
    replication_factor: int = Field(1, gt=0)
    create_topics: bool = True
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)


class HttpSettings(BaseModel):
    """Where the service serves ``/healthz``, ``/readyz`` and ``/metrics`` (port 0 = any)."""

    host: str = "0.0.0.0"
    port: int = Field(8080, ge=0, le=65535)


class ServiceSettings(BaseSettings):
    """Base for every service's single settings class.

    Subclasses set ``model_config = SettingsConfigDict(env_prefix="<SERVICE>_",
    env_nested_delimiter="__")``; Kafka settings come from ``KAFKA_*``.
    """

    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore")

    service_name: str = "coinstream"
    instance_id: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    http: HttpSettings = Field(default_factory=HttpSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    shutdown_timeout_s: float = Field(15.0, gt=0)
    health_interval_s: float = Field(15.0, gt=0, description="ServiceHealthEvent period")
