"""Periodic ``ServiceHealthEvent`` publishing, so alert rules can watch every service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable

from coinstream.runtime.clock import utc_now
from coinstream.runtime.health import HealthServer
from coinstream.runtime.kafka import KafkaProducer
from coinstream.schemas import ServiceHealthEvent, deterministic_id

log = logging.getLogger(__name__)

Counters = Callable[[], dict[str, int]]


def default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class HealthReporter:
    """Publishes the service's readiness and counters to the feed-status topic every interval.

    ``status`` is ``ready`` when all readiness checks pass, ``degraded`` when some fail,
    ``stopping`` on the final report sent from ``aclose()``.
    """

    def __init__(
        self,
        producer: KafkaProducer,
        health: HealthServer,
        service: str,
        interval_s: float,
        counters: Counters | None = None,
        instance: str | None = None,
    ) -> None:
        self._producer = producer
        self._health = health
        self._service = service
        self._interval = interval_s
        self._counters = counters or dict
        self._instance = instance or default_instance_id()
        self._task: asyncio.Task[None] | None = None
        self._seq = 0

    def build(self, stopping: bool = False) -> ServiceHealthEvent:
        ok, checks = self._health.readiness()
        now = utc_now()
        self._seq += 1
        status = "stopping" if stopping else ("ready" if ok else "degraded")
        return ServiceHealthEvent(
            event_id=deterministic_id("health", self._service, self._instance, self._seq),
            event_time=now,
            received_at=now,
            source=self._service,
            service=self._service,
            instance=self._instance,
            status=status,
            checks=checks,
            counters=self._counters(),
        )

    async def publish(self, stopping: bool = False) -> None:
        event = self.build(stopping)
        topic = self._producer.settings.topics.feed_status
        try:
            await self._producer.send(topic, event.to_json(), key=event.key)
        except Exception as exc:  # reporting must never take the service down
            log.warning("health report not sent", extra={"error": repr(exc)})

    async def _loop(self) -> None:
        while True:
            await self.publish()
            await asyncio.sleep(self._interval)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="health-reporter")

    async def aclose(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.publish(stopping=True)

    async def __aenter__(self) -> HealthReporter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
