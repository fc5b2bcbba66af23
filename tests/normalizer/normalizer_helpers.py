"""Shared builders for normalizer tests: raw envelopes from documented wire examples."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from coinstream.normalizer import app
from coinstream.normalizer.parsers import Envelope, decode_envelope
from coinstream.normalizer.settings import NormalizerSettings
from coinstream.runtime import HttpSettings, KafkaSettings
from coinstream.schemas import Event, RawEnvelope, RequestMeta, decode_event

RECEIVED = datetime(2026, 6, 1, 16, 50, 0, 123456, tzinfo=UTC)
"""After every documented payload's own times (event_time may not be after received_at)."""


def raw(
    source: str,
    channel: str,
    payload: str | dict[str, Any] | list[Any],
    received_at: datetime = RECEIVED,
    params: dict[str, Any] | None = None,
) -> bytes:
    """A raw envelope record value, as the ingest services publish it."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    request = None
    if params is not None:
        request = RequestMeta(
            url=f"https://example.invalid{channel}", params=params, status=200, latency_ms=1
        )
    return RawEnvelope(
        envelope_id=uuid.uuid4().hex,
        source=source,
        channel=channel,
        received_at=received_at,
        payload=text,
        request=request,
    ).to_json()


def env(
    source: str, channel: str, payload: str | dict[str, Any] | list[Any], **kw: Any
) -> Envelope:
    return decode_envelope(raw(source, channel, payload, **kw))


def binance_trade(
    symbol: str, trade_id: int, price: str, qty: str, t_ms: int, maker: bool = False
) -> str:
    data = {
        "e": "trade",
        "E": t_ms,
        "s": symbol,
        "t": trade_id,
        "p": price,
        "q": qty,
        "T": t_ms,
        "m": maker,
        "M": True,
    }
    return json.dumps({"stream": f"{symbol.lower()}@trade", "data": data})


def wire(event: Any) -> Event:
    """What a subscriber decodes from ``event``; the decoded event re-serializes to the same
    bytes, so hot-path ``FastPrice`` JSON is exactly pydantic's ``PriceEvent`` JSON."""
    decoded = decode_event(event.to_json())
    assert decoded.to_json() == event.to_json()
    return decoded


def settings_for(kafka: KafkaSettings, engine: str = "aiokafka", **kw: Any) -> NormalizerSettings:
    return NormalizerSettings(
        kafka=kafka,
        engine=engine,
        group_id=f"norm-{uuid.uuid4().hex[:8]}",
        http=HttpSettings(host="127.0.0.1", port=0),
        poll_timeout_ms=100,
        health_interval_s=0.5,
        **kw,
    )


@contextlib.asynccontextmanager
async def running(settings: NormalizerSettings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(app.main(settings, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
