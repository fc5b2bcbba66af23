"""Decoding helpers for subscribers: bytes from a topic to a typed event."""

from __future__ import annotations

from pydantic import TypeAdapter

from coinstream.schemas.envelope import RawEnvelope
from coinstream.schemas.events import AnyEvent, Event

_any_event: TypeAdapter[Event] = TypeAdapter(AnyEvent)


def decode_event(value: bytes | str) -> Event:
    """Decode any canonical event (prices, sentiment, metadata, candles, feed status, alerts)."""
    return _any_event.validate_json(value)


def decode_envelope(value: bytes | str) -> RawEnvelope:
    """Decode a raw envelope from a ``coinstream.raw.<source>.v1`` record value."""
    return RawEnvelope.model_validate_json(value)
