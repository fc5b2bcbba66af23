"""The fast codec of ``RawEnvelope``: a writer for ingest services and a reader for consumers.

Building or validating a pydantic model per frame would cost more than the rest of a hot path.
The writer (``EnvelopeParts``, ``encode``) produces exactly the JSON ``RawEnvelope.to_json()``
writes; the reader (``decode_envelope``) decodes it with msgspec into ``Envelope`` (the
model's fields, derived from the model, plus ``received_text``). The tests pin both against
the model, taking the fields from the model itself.
"""

from __future__ import annotations

import time
import typing
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
import orjson

from coinstream.schemas.envelope import ENVELOPE_VERSION, RawEnvelope
from coinstream.schemas.fastprice import utc_text


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


# -- reader -------------------------------------------------------------------------------


class EnvelopeError(ValueError):
    """A record value that is not a raw envelope this package reads (with the reason)."""


class Envelope(Protocol):
    """A decoded raw envelope (``decode_envelope``): the fields of ``RawEnvelope`` with
    ``received_at`` a UTC ``datetime`` and ``request`` a plain dict, plus ``received_text``:
    ``received_at`` in the canonical form ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""

    schema_version: int
    envelope_id: str
    source: str
    channel: str
    received_at: datetime
    payload: str
    connection_id: str | None
    request: dict[str, Any] | None
    replayed: bool
    backfilled: bool
    received_text: str


def _wire_type(name: str, info: Any) -> Any:
    """How a model field travels: times as text, the request as a dict, the rest as typed."""
    if name == "received_at":
        return str
    if name == "request":
        return dict[str, Any] | None
    hint = typing.get_type_hints(RawEnvelope)[name]
    if typing.get_origin(hint) is typing.Literal:
        return int
    return hint if hint in (str, bool, int) else (str | None if not info.is_required() else str)


def _struct(name: str, time_type: Any) -> Any:
    fields: list[Any] = []
    for field_name, info in RawEnvelope.model_fields.items():
        wire = time_type if field_name == "received_at" else _wire_type(field_name, info)
        if info.is_required():
            fields.append((field_name, wire))
        else:
            fields.append((field_name, wire, info.get_default(call_default_factory=True)))
    fields.append(("received_text", str, ""))
    required = [f for f in fields if len(f) == 2]
    optional = [f for f in fields if len(f) == 3]
    return msgspec.defstruct(name, [*required, *optional], frozen=True, kw_only=True)


_EnvelopeStruct = _struct("Envelope", datetime)
_WireStruct = _struct("WireEnvelope", str)
_decode_general: Callable[[bytes | str], Any] = msgspec.json.Decoder(_EnvelopeStruct).decode
_decode_wire: Callable[[bytes | str], Any] = msgspec.json.Decoder(_WireStruct).decode
_fromiso = datetime.fromisoformat
_replace: Callable[..., Any] = msgspec.structs.replace


def envelope(**fields: Any) -> Envelope:
    """An ``Envelope`` from field values (tests and tools that build one directly)."""
    env: Envelope = _EnvelopeStruct(**fields)
    if not env.received_text:
        env = _replace(env, received_text=utc_text(env.received_at))
    return env


def _canonical_time(text: str) -> bool:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ``, the form ``RawEnvelope`` and every event write."""
    # fromisoformat() then refuses anything in this shape that is not a valid time
    return len(text) == 27 and text[26] == "Z" and text[19] == "." and text[10] == "T"


def decode_envelope(value: bytes | str) -> Envelope:
    """Decode a raw record value; ``EnvelopeError`` saying why if it is not a raw envelope
    of this version."""
    try:
        wire = _decode_wire(value)
        text = wire.received_at
        if wire.schema_version == ENVELOPE_VERSION and _canonical_time(text):
            env: Envelope = _replace(wire, received_at=_fromiso(text), received_text=text)
            return env
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, ValueError):
        pass  # not the common form: decode again for the exact error or the general time form
    return _decode_slow(value)


def _decode_slow(value: bytes | str) -> Envelope:
    try:
        env: Envelope = _decode_general(value)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"record value is not a raw envelope: {exc}") from exc
    if env.schema_version != ENVELOPE_VERSION:
        raise EnvelopeError(
            f"raw envelope schema_version {env.schema_version} is not supported (this "
            f"reader reads version {ENVELOPE_VERSION})"
        )
    received = env.received_at
    if received.tzinfo is None:
        raise EnvelopeError("envelope received_at has no timezone")
    if received.utcoffset():
        received = received.astimezone(UTC)
    result: Envelope = _replace(env, received_at=received, received_text=utc_text(received))
    return result
