"""Decoding helpers for subscribers: bytes from a topic to a typed event."""

from __future__ import annotations

from datetime import timedelta

from pydantic import TypeAdapter, ValidationError

from coinstream.schemas.envelope import RawEnvelope
from coinstream.schemas.events import AnyEvent, Event

_any_event: TypeAdapter[Event] = TypeAdapter(AnyEvent)


def decode_event(value: bytes | str, *, max_future_skew: timedelta | None = None) -> Event:
    """Decode any canonical event (prices, sentiment, metadata, candles, feed status, alerts).

    Raises ``pydantic.ValidationError`` (a ``ValueError``) for anything outside the contract;
    ``max_future_skew`` overrides how far ``event_time`` may be after ``received_at``.
    """
    context = None if max_future_skew is None else {"max_future_skew": max_future_skew}
    return _any_event.validate_json(value, context=context)


def decode_envelope(value: bytes | str) -> RawEnvelope:
    """Decode a raw envelope from a ``coinstream.raw.<source>.v1`` record value."""
    return RawEnvelope.model_validate_json(value)


_TAGS = {
    "price": "PriceEvent",
    "sentiment": "SentimentEvent",
    "metadata": "AssetMetadataEvent",
    "candle": "CandleEvent",
    "feed_status": "FeedStatusEvent",
    "service_health": "ServiceHealthEvent",
    "alert": "AlertEvent",
}


def describe_error(exc: ValidationError, limit: int = 3) -> str:
    """A validation error as one readable line: ``PriceEvent price: must be positive, got -5``
    (the first ``limit`` problems), for dead-letter reasons and logs."""
    parts = []
    for error in exc.errors(include_url=False)[:limit]:
        loc = [str(x) for x in error["loc"]]
        model = exc.title if exc.title.isidentifier() else "event"
        if loc and loc[0] in _TAGS:  # a tagged union names the event type first
            model = _TAGS[loc.pop(0)]
        message = str(error["msg"]).removeprefix("Value error, ")
        field = ".".join(loc)
        if error["type"] == "json_invalid":
            parts.append(f"not JSON: {message.removeprefix('Invalid JSON: ')}")
        elif error["type"] == "union_tag_invalid" or error["type"] == "union_tag_not_found":
            parts.append(f"not a canonical event type: {message}")
        else:
            where = f"{model} {field}".strip() if field else model
            parts.append(f"{where}: {message}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
