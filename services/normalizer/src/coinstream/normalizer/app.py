"""Wiring and lifespan of the normalizer: health server, producer, engine, health reports."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Protocol

from coinstream.normalizer.core import Normalizer
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.parsers import load_parsers
from coinstream.normalizer.settings import NormalizerSettings
from coinstream.runtime import (
    HealthReporter,
    HealthServer,
    KafkaProducer,
    ensure_topics,
)
from coinstream.schemas import limits

log = logging.getLogger(__name__)


class Engine(Protocol):
    """What both engines offer the lifespan: a readiness check and ``run(stop)``."""

    def ready(self) -> tuple[bool, str]: ...

    async def run(self, stop: asyncio.Event) -> None: ...


def build_core(settings: NormalizerSettings) -> Normalizer:
    registry = Registry.from_file(settings.registry_file)
    return Normalizer(settings, settings.kafka.topics, registry, load_parsers())


def sources_of(settings: NormalizerSettings, core: Normalizer) -> tuple[str, ...]:
    """The sources to consume: ``settings.sources`` or every source with a parser."""
    return settings.sources if settings.sources is not None else tuple(sorted(core.parsers))


async def main(settings: NormalizerSettings, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set, then stop intake, flush, commit and close."""
    topics = settings.kafka.topics
    limits.configure(max_future_skew=timedelta(seconds=settings.max_future_skew_s))
    core = build_core(settings)
    sources = sources_of(settings, core)
    missing = [s for s in sources if s not in core.parsers]
    if missing:
        log.warning("no parser for configured sources", extra={"sources": missing})
    raw_topics = [topics.raw(s) for s in sources]
    if settings.kafka.create_topics:
        await ensure_topics(settings.kafka, topics.specs(sources=sources))
    async with HealthServer(settings.http) as health, KafkaProducer(settings.kafka) as producer:
        engine: Engine
        if settings.engine == "faust":
            from coinstream.normalizer.engine_faust import FaustEngine

            engine = FaustEngine(core, settings, raw_topics)
        else:
            from coinstream.normalizer.engine_aiokafka import AiokafkaEngine

            engine = AiokafkaEngine(
                core,
                producer,
                raw_topics,
                settings.group_id,
                settings.batch_max_records,
                settings.poll_timeout_ms,
                settings.state_group_suffix,
            )
        health.add_check("engine", engine.ready)
        async with HealthReporter(
            producer,
            health,
            settings.service_name,
            settings.health_interval_s,
            counters=lambda: {**core.totals, "unmapped_ids": len(core.registry.unmapped)},
            instance=settings.instance_id,
        ):
            log.info("normalizer started", extra={"engine": settings.engine, "topics": raw_topics})
            try:
                await engine.run(stop)
            finally:
                health.stopping = True
    log.info("normalizer stopped")
