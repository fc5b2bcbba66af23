"""Helpers for the alerts tests: events, settings, and the service running in-process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from coinstream.alerts import app
from coinstream.alerts.settings import AlertsSettings
from coinstream.devstack.ports import free_port
from coinstream.runtime import HttpSettings, KafkaProducer, KafkaSettings
from coinstream.schemas import PriceEvent, deterministic_id

T0 = 1_760_000_000.0


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, UTC)


def price(
    symbol: str,
    value: str | int,
    t: float = 0.0,
    source: str = "binance",
    kind: str = "trade",
    size: str | None = "1",
    absolute: float | None = None,
) -> PriceEvent:
    """A trade price event at ``T0 + t`` (or at ``absolute`` epoch seconds)."""
    when = datetime.fromtimestamp(absolute, UTC) if absolute is not None else at(t)
    base, quote = symbol.split("-")
    return PriceEvent(
        event_id=deterministic_id("test", symbol, value, when.timestamp(), source),
        event_time=when,
        received_at=when,
        source=source,
        kind=kind,  # type: ignore[arg-type]
        symbol=symbol,
        base=base,
        quote=quote,
        price=Decimal(str(value)),
        size=Decimal(size) if size is not None else None,
    )


def service_settings(
    kafka: KafkaSettings,
    rules_file: Path,
    database_url: str | None,
    secrets: dict[str, str],
    **overrides: Any,
) -> AlertsSettings:
    return AlertsSettings(
        rules_file=rules_file,
        database_url=SecretStr(database_url) if database_url else None,
        kafka=kafka,
        http=HttpSettings(host="127.0.0.1", port=free_port()),
        receiver_secrets={k: SecretStr(v) for k, v in secrets.items()},
        group_id="alerts-test",
        tick_interval_s=0.05,
        state_flush_interval_s=0.2,
        health_interval_s=5,
        shutdown_timeout_s=10,
        retry_initial_s=0.2,
        **overrides,
    )


class RunningService:
    """``app.main`` as a task; ``stop()`` is what SIGTERM does."""

    def __init__(self, settings: AlertsSettings) -> None:
        self.settings = settings
        self.stop_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http.port}"

    async def start(self, timeout: float = 20.0) -> RunningService:
        self.task = asyncio.create_task(app.main(self.settings, self.stop_event))
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.task.done():
                    self.task.result()
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.url + "/readyz") as r:
                        if r.status == 200:
                            return self
                await asyncio.sleep(0.05)
        raise TimeoutError("alerts service not ready")

    async def stop(self) -> None:
        self.stop_event.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 15)


async def produce(kafka: KafkaSettings, topic: str, events: list[Any]) -> None:
    async with KafkaProducer(kafka) as producer:
        futures = [await producer.send(topic, e.to_json(), key=e.key) for e in events]
        await asyncio.gather(*futures)


async def wait_until(
    check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)
