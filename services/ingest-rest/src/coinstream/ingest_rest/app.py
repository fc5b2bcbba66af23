"""Wiring and lifespan: health server, producer, one runner per enabled source, reporter.

On stop: readiness goes false, endpoint tasks are cancelled (no new requests), HTTP pools
close, the health reporter sends its final report and the producer flushes and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from coinstream.ingest_rest.poller import Counters, SourceRunner
from coinstream.ingest_rest.publisher import Publisher
from coinstream.ingest_rest.registry import load_sources
from coinstream.ingest_rest.settings import IngestRestSettings
from coinstream.ingest_rest.source import RestSource
from coinstream.runtime import HealthReporter, HealthServer, KafkaProducer, ensure_topics

log = logging.getLogger(__name__)


def enabled_sources(settings: IngestRestSettings, sources: list[RestSource]) -> list[RestSource]:
    return [s for s in sources if settings.source(s).enabled]


async def main(
    settings: IngestRestSettings,
    stop: asyncio.Event,
    sources: list[RestSource] | None = None,
    health: HealthServer | None = None,
) -> None:
    """Run until ``stop`` is set. ``sources`` defaults to every installed plugin."""
    # httpx logs every URL with its query at INFO; keep request details to our own logs.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    active = enabled_sources(settings, sources if sources is not None else load_sources())
    topics = settings.kafka.topics
    if settings.kafka.create_topics:
        wanted = {topics.raw(s.name) for s in active} | {topics.feed_status, topics.dlq}
        specs = [s for s in topics.specs(tuple(src.name for src in active)) if s.name in wanted]
        await ensure_topics(settings.kafka, specs)
    counters = Counters()
    health = health or HealthServer(settings.http)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(health)
        producer = await stack.enter_async_context(KafkaProducer(settings.kafka))
        publisher = Publisher(producer, settings.service_name, settings.publish_timeout_s)
        runners = [
            await stack.enter_async_context(
                SourceRunner(src, settings.source(src), publisher, counters)
            )
            for src in active
        ]
        for runner in runners:
            health.add_check(f"source:{runner.name}", runner.readiness)
        await stack.enter_async_context(
            HealthReporter(
                producer,
                health,
                settings.service_name,
                settings.health_interval_s,
                counters.snapshot,
                settings.instance_id,
            )
        )
        tasks = [asyncio.create_task(r.run(), name=f"source:{r.name}") for r in runners]
        log.info("polling", extra={"sources": [r.name for r in runners]})
        await stop.wait()
        health.stopping = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("sources stopped; flushing")
