"""Shared service plumbing: settings base, Kafka lifecycle, health server, logging, shutdown."""

from coinstream.runtime.backoff import Backoff
from coinstream.runtime.clock import utc_now
from coinstream.runtime.errors import CoinstreamError, ConfigurationError, ResourceClosedError
from coinstream.runtime.health import HealthServer
from coinstream.runtime.kafka import (
    DeadLetterPublisher,
    KafkaConsumer,
    KafkaProducer,
    ensure_topics,
)
from coinstream.runtime.logging import configure_logging, mask_secrets
from coinstream.runtime.reporting import HealthReporter
from coinstream.runtime.service import run, run_until_stopped
from coinstream.runtime.settings import HttpSettings, KafkaSettings, ServiceSettings

__all__ = [
    "Backoff",
    "CoinstreamError",
    "ConfigurationError",
    "DeadLetterPublisher",
    "HealthReporter",
    "HealthServer",
    "HttpSettings",
    "KafkaConsumer",
    "KafkaProducer",
    "KafkaSettings",
    "ResourceClosedError",
    "ServiceSettings",
    "configure_logging",
    "ensure_topics",
    "mask_secrets",
    "run",
    "run_until_stopped",
    "utc_now",
]
