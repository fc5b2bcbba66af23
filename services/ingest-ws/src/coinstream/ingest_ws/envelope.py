"""Fast raw-envelope encoding: the same JSON as ``RawEnvelope.to_json()`` without validation.

Building a pydantic model per frame would cost more than the rest of the hot path; this writes
the identical JSON document directly (a test pins the equivalence).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import orjson

from coinstream.schemas.envelope import ENVELOPE_VERSION


class Clock:
    """Wall-clock receipt times in the envelope's format, caching the per-second prefix."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> tuple[float, str]:
        """(epoch seconds, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``)."""
        t = time.time()
        us = int(t * 1_000_000)
        second, micros = divmod(us, 1_000_000)
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return t, f"{self._prefix}.{micros:06d}Z"


class EnvelopeIds:
    """Unique envelope ids: a random 64-bit prefix per process and a counter."""

    def __init__(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._n = 0

    @property
    def prefix(self) -> str:
        return self._prefix

    def next(self) -> str:
        self._n += 1
        return f"{self._prefix}-{self._n:x}"

    def reserve(self, count: int) -> int:
        """Reserve ``count`` consecutive ids; returns the counter of the first one."""
        first = self._n + 1
        self._n += count
        return first


ENVELOPE_FORMAT = b"%s%x%s%s%s"
"""``ENVELOPE_FORMAT % (head, counter, middle, orjson.dumps(payload), tail)``: one envelope."""


class EnvelopeParts:
    """The constant parts of the envelopes one source writes, for building many at once.

    ``head`` (process), ``middle(channel, received_at)`` (one per channel and read) and
    ``tail(connection_id)`` (per connection) around the id counter and the JSON-escaped
    payload give, byte for byte, ``encode()`` and so ``RawEnvelope.to_json()``.
    """

    def __init__(self, source: str, ids: EnvelopeIds) -> None:
        self.ids = ids
        self.head = b'{"schema_version":%d,"envelope_id":%s-' % (
            ENVELOPE_VERSION,
            orjson.dumps(ids.prefix)[:-1],
        )
        self._source = b'","source":' + orjson.dumps(source) + b',"channel":'

    def middle(self, channel: str, received_at: str) -> bytes:
        return (
            self._source
            + orjson.dumps(channel)
            + b',"received_at":'
            + orjson.dumps(received_at)
            + b',"payload":'
        )

    @staticmethod
    def tail(connection_id: str | None, replayed: bool = False) -> bytes:
        conn = b"" if connection_id is None else b',"connection_id":' + orjson.dumps(connection_id)
        return conn + (b',"replayed":true}' if replayed else b',"replayed":false}')

    def build(self, counter: int, middle: bytes, payload: str, tail: bytes) -> bytes:
        return ENVELOPE_FORMAT % (self.head, counter, middle, orjson.dumps(payload), tail)


def encode(
    envelope_id: str,
    source: str,
    channel: str,
    received_at: str,
    payload: str,
    connection_id: str | None,
    replayed: bool = False,
) -> bytes:
    """The envelope's JSON, byte for byte what ``RawEnvelope.to_json()`` writes."""
    doc: dict[str, object] = {
        "schema_version": ENVELOPE_VERSION,
        "envelope_id": envelope_id,
        "source": source,
        "channel": channel,
        "received_at": received_at,
        "payload": payload,
    }
    if connection_id is not None:
        doc["connection_id"] = connection_id
    doc["replayed"] = replayed
    return orjson.dumps(doc)
