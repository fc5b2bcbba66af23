"""Dead-letter records: the original bytes plus headers naming the reason and the origin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

HEADER_REASON = "dlq.reason"
HEADER_ERROR_CLASS = "dlq.error_class"
HEADER_ORIGIN_TOPIC = "dlq.origin.topic"
HEADER_ORIGIN_PARTITION = "dlq.origin.partition"
HEADER_ORIGIN_OFFSET = "dlq.origin.offset"
HEADER_SERVICE = "dlq.service"
HEADER_FAILED_AT = "dlq.failed_at"

_MAX_REASON = 4000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why a record went to ``coinstream.dlq.v1`` and where it came from.

    ``origin_topic``/``origin_partition``/``origin_offset`` name the Kafka record that failed;
    for records that never reached Kafka (a malformed HTTP response) the origin topic is the
    raw topic it was bound for and partition/offset are ``-1``.
    """

    reason: str
    error_class: str
    origin_topic: str
    origin_partition: int = -1
    origin_offset: int = -1
    service: str = ""
    failed_at: datetime | None = None

    def to_headers(self) -> list[tuple[str, bytes]]:
        failed_at = (self.failed_at or datetime.now(UTC)).astimezone(UTC)
        return [
            (HEADER_REASON, self.reason[:_MAX_REASON].encode()),
            (HEADER_ERROR_CLASS, self.error_class.encode()),
            (HEADER_ORIGIN_TOPIC, self.origin_topic.encode()),
            (HEADER_ORIGIN_PARTITION, str(self.origin_partition).encode()),
            (HEADER_ORIGIN_OFFSET, str(self.origin_offset).encode()),
            (HEADER_SERVICE, self.service.encode()),
            (HEADER_FAILED_AT, failed_at.isoformat().encode()),
        ]

    @classmethod
    def from_headers(
        cls, headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]
    ) -> DeadLetter:
        """Read the dead-letter headers of a consumed record (raises ``KeyError`` if absent)."""
        h = {k: v.decode() for k, v in headers}
        failed = h.get(HEADER_FAILED_AT)
        return cls(
            reason=h[HEADER_REASON],
            error_class=h[HEADER_ERROR_CLASS],
            origin_topic=h[HEADER_ORIGIN_TOPIC],
            origin_partition=int(h.get(HEADER_ORIGIN_PARTITION, "-1")),
            origin_offset=int(h.get(HEADER_ORIGIN_OFFSET, "-1")),
            service=h.get(HEADER_SERVICE, ""),
            failed_at=datetime.fromisoformat(failed) if failed else None,
        )
