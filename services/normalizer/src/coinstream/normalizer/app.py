"""Wiring and lifespan of the normalizer: health server, producer, engine, health reports.

One package, two roles (``NORMALIZER_ROLE``), deployed and scaled on their own: ``normalize``
(raw topics -> canonical events, candles, and venue trades keyed by asset on the internal
trades-by-asset topic) and ``consolidate`` (that topic -> consolidated prices).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Protocol

from coinstream.normalizer.consolidate import ConsolidationCore
from coinstream.normalizer.core import Normalizer, Stage
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
    core: Stage
    if settings.role == "consolidate":
        core = ConsolidationCore(settings, topics)
        inputs = [topics.trades_by_asset]
        specs = [s for s in topics.internal_specs() if s.name == topics.trades_by_asset]
        specs += [s for s in topics.specs(sources=()) if s.name == topics.prices]
    else:
        normalizer = build_core(settings)
        core = normalizer
        sources = sources_of(settings, normalizer)
        missing = [s for s in sources if s not in normalizer.parsers]
        if missing:
            log.warning("no parser for configured sources", extra={"sources": missing})
        inputs = [topics.raw(s) for s in sources]
        specs = topics.specs(sources=sources)
        specs += [s for s in topics.internal_specs() if s.name == topics.trades_by_asset]
    if settings.kafka.create_topics:
        await ensure_topics(settings.kafka, specs)
    async with HealthServer(settings.http) as health, KafkaProducer(settings.kafka) as producer:
        engine: Engine
        if settings.engine == "faust":
            from coinstream.normalizer.engine_faust import FaustEngine

            assert isinstance(core, Normalizer)  # the settings refuse faust for consolidate
            engine = FaustEngine(core, settings, inputs)
        else:
            from coinstream.normalizer.engine_aiokafka import AiokafkaEngine

            engine = AiokafkaEngine(
                core,
                producer,
                inputs,
                settings.group_id,
                settings.batch_max_records,
                settings.poll_timeout_ms,
                settings.state_group_suffix,
                service=settings.service_name,
            )
        health.add_check("engine", engine.ready)
        registry = getattr(core, "registry", None)
        async with HealthReporter(
            producer,
            health,
            settings.service_name,
            settings.health_interval_s,
            counters=lambda: {
                **core.totals,
                "unmapped_ids": len(registry.unmapped) if registry is not None else 0,
            },
            instance=settings.instance_id,
        ):
            log.info(
                f"{settings.service_name} started",
                extra={"role": settings.role, "engine": settings.engine, "topics": inputs},
            )
            try:
                await engine.run(stop)
            finally:
                health.stopping = True
    log.info(f"{settings.service_name} stopped")
