"""Shared service plumbing: settings base, Kafka lifecycle, health server, logging, shutdown."""

from coinstream.runtime.backoff import Backoff
from coinstream.runtime.batching import BatchSender, OutRecord, RecordTooLargeError, Refused
from coinstream.runtime.clock import utc_now
from coinstream.runtime.deadletters import DeadLetterPublisher
from coinstream.runtime.errors import (
    CoinstreamError,
    ConfigurationError,
    ResourceClosedError,
    TopicCreationError,
)
from coinstream.runtime.failures import describe, is_transient
from coinstream.runtime.health import HealthServer
from coinstream.runtime.kafka import (
    KafkaConsumer,
    KafkaProducer,
    ensure_topics,
)
from coinstream.runtime.leases import WorkLeases, partition_for
from coinstream.runtime.logging import configure_logging, mask_secrets
from coinstream.runtime.reporting import HealthReporter
from coinstream.runtime.retry import StoppedError, retry_transient, sleep_unless_stopped
from coinstream.runtime.service import run, run_until_stopped
from coinstream.runtime.settings import HttpSettings, KafkaSettings, ServiceSettings

__all__ = [
    "Backoff",
    "BatchSender",
    "CoinstreamError",
    "ConfigurationError",
    "DeadLetterPublisher",
    "HealthReporter",
    "HealthServer",
    "HttpSettings",
    "KafkaConsumer",
    "KafkaProducer",
    "KafkaSettings",
    "OutRecord",
    "RecordTooLargeError",
    "Refused",
    "ResourceClosedError",
    "ServiceSettings",
    "StoppedError",
    "TopicCreationError",
    "WorkLeases",
    "configure_logging",
    "describe",
    "ensure_topics",
    "is_transient",
    "mask_secrets",
    "partition_for",
    "retry_transient",
    "run",
    "run_until_stopped",
    "sleep_unless_stopped",
    "utc_now",
]
