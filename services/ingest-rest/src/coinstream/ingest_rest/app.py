"""Wiring and lifespan: health server, producer, work leases, one runner per enabled source,
reporter.

The replicas share the jobs (one per source and endpoint) through the consumer group
``group_id`` on the work topic (``WorkLeases``); one replica alone owns every job. On stop: readiness goes false, endpoint tasks are cancelled (no new requests), HTTP pools
close, the health reporter sends its final report and the producer flushes and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from coinstream.ingest_rest import metrics
from coinstream.ingest_rest.poller import Counters, SourceRunner
from coinstream.ingest_rest.publisher import Publisher
from coinstream.ingest_rest.registry import load_sources
from coinstream.ingest_rest.settings import IngestRestSettings
from coinstream.ingest_rest.source import RestSource
from coinstream.runtime import (
    HealthReporter,
    HealthServer,
    KafkaProducer,
    WorkLeases,
    ensure_topics,
)

log = logging.getLogger(__name__)

DRAIN_MOVED_S = 15.0
"""How long a rebalance waits for polls of jobs that moved away (they end at their next
request, so this bounds one request and its publication)."""


def work_readiness(leases: WorkLeases, runners: list[SourceRunner]) -> tuple[bool, str]:
    """Ready once the group gave this replica its share; the detail names the jobs owned."""
    ok, detail = leases.readiness()
    if not ok:
        return ok, f"owns no jobs yet: {detail}"
    owned = sum(len(r.owned_endpoints()) for r in runners)
    total = sum(len(r.enabled_endpoints()) for r in runners)
    return True, f"owns {owned} of {total} jobs ({detail.removeprefix('owns ')})"


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
        specs += [
            s
            for s in topics.internal_specs(work_partitions=settings.work_partitions)
            if s.name == topics.ingest_rest_work
        ]
        await ensure_topics(settings.kafka, specs)
    counters = Counters()
    health = health or HealthServer(settings.http)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(health)
        producer = await stack.enter_async_context(KafkaProducer(settings.kafka))
        publisher = Publisher(producer, settings.service_name, settings.publish_timeout_s)
        runners: list[SourceRunner] = []

        async def drain_moved(_: frozenset[int]) -> None:
            """A rebalance takes jobs away: let their polls in flight end first."""
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_MOVED_S):
                    await asyncio.gather(*(r.moved_polls_done() for r in runners))

        leases = WorkLeases(
            settings.kafka, topics.ingest_rest_work, settings.group_id, on_revoked=drain_moved
        )
        leases.add_listener(lambda: metrics.WORK_PARTITIONS_OWNED.set(len(leases.owned)))
        runners += [
            await stack.enter_async_context(
                SourceRunner(src, settings.source(src), publisher, counters, leases)
            )
            for src in active
        ]
        health.add_check("work", lambda: work_readiness(leases, runners))
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
        await stack.enter_async_context(leases)  # left after the runners stop: no overlap
        tasks = [asyncio.create_task(r.run(), name=f"source:{r.name}") for r in runners]
        log.info("polling", extra={"sources": [r.name for r in runners]})
        await stop.wait()
        health.stopping = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("sources stopped; flushing")
