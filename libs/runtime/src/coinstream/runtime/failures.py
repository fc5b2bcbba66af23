"""Transient or permanent: how every stage classifies a failure.

A failure is *transient* when it says nothing about the record: the broker or the network is
down or slow (connection refused or reset, timeouts, no leader, not enough replicas), or the
client is not allowed to write yet (authorization; an operator fixes it). Transient failures
are retried with ``Backoff`` for as long as it takes and never dead-letter anything.

Everything else is treated as possibly caused by the records in hand and is decided *per
record* by isolation: the records are sent (or written) one by one and those that still fail
are dead-lettered with the reason, while the others go through. So an unknown error type is
never retried forever, and one bad record never takes its batch-mates with it.
"""

from __future__ import annotations

import asyncio

from aiokafka import errors as kafka_errors

_TRANSIENT_KAFKA: tuple[type[BaseException], ...] = (
    kafka_errors.KafkaConnectionError,
    kafka_errors.KafkaTimeoutError,
    kafka_errors.RequestTimedOutError,
    kafka_errors.NoBrokersAvailable,
    kafka_errors.NodeNotReadyError,
    kafka_errors.BrokerNotAvailableError,
    kafka_errors.KafkaUnavailableError,
    kafka_errors.NotEnoughReplicasError,
    kafka_errors.NotEnoughReplicasAfterAppendError,
    kafka_errors.LeaderNotAvailableError,
    kafka_errors.NotLeaderForPartitionError,
    kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.ClusterAuthorizationFailedError,
    kafka_errors.GroupAuthorizationFailedError,
    kafka_errors.TransactionalIdAuthorizationFailed,
    kafka_errors.SaslAuthenticationFailed,
    kafka_errors.AuthenticationFailedError,
    kafka_errors.KafkaStorageError,
)


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` means "the service or network is unavailable", not "this record"."""
    if isinstance(exc, asyncio.CancelledError):
        return False
    if isinstance(exc, _TRANSIENT_KAFKA):
        return True
    if isinstance(exc, kafka_errors.KafkaError):
        return bool(getattr(exc, "retriable", False))
    return isinstance(exc, OSError | TimeoutError | ConnectionError)


def describe(exc: BaseException) -> str:
    """``ErrorClass: message`` (bounded), the form reasons and logs use."""
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text[:500]}"
