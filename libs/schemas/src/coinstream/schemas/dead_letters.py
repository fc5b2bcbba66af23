"""Dead-letter records: the original bytes plus headers naming the reason and the origin.

A record too large to be dead-lettered as it is (it was refused for its size, say) is replaced
by a bounded form: a small JSON document with its first bytes, its size and its digest
(``bounded_value``); the headers ``dlq.original_size`` and ``dlq.original_digest`` say so.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

HEADER_REASON = "dlq.reason"
HEADER_ERROR_CLASS = "dlq.error_class"
HEADER_ORIGIN_TOPIC = "dlq.origin.topic"
HEADER_ORIGIN_PARTITION = "dlq.origin.partition"
HEADER_ORIGIN_OFFSET = "dlq.origin.offset"
HEADER_SERVICE = "dlq.service"
HEADER_FAILED_AT = "dlq.failed_at"
HEADER_ORIGINAL_SIZE = "dlq.original_size"
HEADER_ORIGINAL_DIGEST = "dlq.original_digest"

_MAX_REASON = 4000
BOUNDED_HEAD_BYTES = 4096
"""How many leading bytes of an oversized record its bounded form keeps."""


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
    original_size: int | None = None
    """Set when the value is the bounded form of a larger record: the original size."""
    original_digest: str | None = None
    """``blake2b-256:<hex>`` of the original value, with ``original_size``."""

    def to_headers(self) -> list[tuple[str, bytes]]:
        failed_at = (self.failed_at or datetime.now(UTC)).astimezone(UTC)
        headers = [
            (HEADER_REASON, _bounded_text(self.reason).encode()),
            (HEADER_ERROR_CLASS, self.error_class[:200].encode()),
            (HEADER_ORIGIN_TOPIC, self.origin_topic[:300].encode()),
            (HEADER_ORIGIN_PARTITION, str(self.origin_partition).encode()),
            (HEADER_ORIGIN_OFFSET, str(self.origin_offset).encode()),
            (HEADER_SERVICE, self.service.encode()),
            (HEADER_FAILED_AT, failed_at.isoformat().encode()),
        ]
        if self.original_size is not None:
            headers.append((HEADER_ORIGINAL_SIZE, str(self.original_size).encode()))
        if self.original_digest is not None:
            headers.append((HEADER_ORIGINAL_DIGEST, self.original_digest.encode()))
        return headers

    @classmethod
    def from_headers(
        cls, headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]
    ) -> DeadLetter:
        """Read the dead-letter headers of a consumed record (raises ``KeyError`` if absent)."""
        h = {k: v.decode(errors="replace") for k, v in headers}
        failed = h.get(HEADER_FAILED_AT)
        size = h.get(HEADER_ORIGINAL_SIZE)
        return cls(
            reason=h[HEADER_REASON],
            error_class=h[HEADER_ERROR_CLASS],
            origin_topic=h[HEADER_ORIGIN_TOPIC],
            origin_partition=int(h.get(HEADER_ORIGIN_PARTITION, "-1")),
            origin_offset=int(h.get(HEADER_ORIGIN_OFFSET, "-1")),
            service=h.get(HEADER_SERVICE, ""),
            failed_at=datetime.fromisoformat(failed) if failed else None,
            original_size=int(size) if size else None,
            original_digest=h.get(HEADER_ORIGINAL_DIGEST),
        )


def _bounded_text(text: str) -> str:
    """At most ``_MAX_REASON`` characters, and never a character that is not UTF-8."""
    text = text[:_MAX_REASON]
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def digest(value: bytes) -> str:
    """``blake2b-256:<hex>``: how dead letters name the bytes they do not carry."""
    return "blake2b-256:" + hashlib.blake2b(value, digest_size=32).hexdigest()


def bounded_value(value: bytes, head: int = BOUNDED_HEAD_BYTES) -> bytes:
    """The bounded form of an oversized record value: a JSON object with ``truncated``
    (true), ``original_size``, ``original_digest`` and ``head`` (the first ``head`` bytes,
    decoded as UTF-8 with undecodable bytes escaped as ``\\xNN``)."""
    doc = {
        "truncated": True,
        "original_size": len(value),
        "original_digest": digest(value),
        "head": value[:head].decode("utf-8", "backslashreplace"),
    }
    return json.dumps(doc).encode()


_DIGEST_PATTERN = r"^blake2b-256:[0-9a-f]{64}$"
_INT_PATTERN = r"^-?[0-9]{1,19}$"


def headers_json_schema() -> dict[str, object]:
    """JSON Schema of a dead letter's headers, as a map of header name to UTF-8 text.

    Other headers may be present (the original record's, tracing); the ``dlq.*`` ones are
    exactly these."""
    text = {"type": "string"}
    return {
        "title": "DeadLetterHeaders",
        "description": (
            "Headers of a record on the dead-letter topic (values decoded as UTF-8). The record"
            " value is the original bytes, or the bounded form (DeadLetterBoundedValue) when"
            " dlq.original_size is present."
        ),
        "type": "object",
        "properties": {
            HEADER_REASON: {**text, "maxLength": _MAX_REASON, "description": "Why it failed"},
            HEADER_ERROR_CLASS: {**text, "maxLength": 200},
            HEADER_ORIGIN_TOPIC: {**text, "minLength": 1, "maxLength": 300},
            HEADER_ORIGIN_PARTITION: {
                **text,
                "pattern": _INT_PATTERN,
                "description": "-1: never in Kafka",
            },
            HEADER_ORIGIN_OFFSET: {
                **text,
                "pattern": _INT_PATTERN,
                "description": "-1: never in Kafka",
            },
            HEADER_SERVICE: text,
            HEADER_FAILED_AT: {**text, "format": "date-time"},
            HEADER_ORIGINAL_SIZE: {**text, "pattern": r"^[0-9]{1,19}$", "description": "Bytes"},
            HEADER_ORIGINAL_DIGEST: {**text, "pattern": _DIGEST_PATTERN},
        },
        "required": [
            HEADER_REASON,
            HEADER_ERROR_CLASS,
            HEADER_ORIGIN_TOPIC,
            HEADER_ORIGIN_PARTITION,
            HEADER_ORIGIN_OFFSET,
            HEADER_SERVICE,
            HEADER_FAILED_AT,
        ],
        "dependentRequired": {
            HEADER_ORIGINAL_SIZE: [HEADER_ORIGINAL_DIGEST],
            HEADER_ORIGINAL_DIGEST: [HEADER_ORIGINAL_SIZE],
        },
        "additionalProperties": {"type": "string"},
    }


def bounded_value_json_schema() -> dict[str, object]:
    """JSON Schema of ``bounded_value``: the value of a dead letter too large to carry."""
    return {
        "title": "DeadLetterBoundedValue",
        "type": "object",
        "properties": {
            "truncated": {"const": True},
            "original_size": {"type": "integer", "minimum": 0, "description": "Bytes"},
            "original_digest": {"type": "string", "pattern": _DIGEST_PATTERN},
            "head": {"type": "string", "description": "The first bytes, \\xNN-escaped"},
        },
        "required": ["truncated", "original_size", "original_digest", "head"],
        "additionalProperties": False,
    }
