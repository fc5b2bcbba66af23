"""Wiring and lifespan of ingest-ws: venues and shards, the Kafka publisher, health, reporting."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from coinstream.ingest_ws import metrics
from coinstream.ingest_ws.checkpoints import (
    CheckpointBook,
    CheckpointWriter,
    Position,
    load_positions,
)
from coinstream.ingest_ws.feed import Venue
from coinstream.ingest_ws.publisher import KafkaPublisher, Sink
from coinstream.ingest_ws.settings import IngestWsServiceSettings
from coinstream.ingest_ws.venues import VenueProtocol, build_protocol
from coinstream.runtime import (
    HealthReporter,
    HealthServer,
    KafkaProducer,
    ensure_topics,
)

log = logging.getLogger(__name__)

RATE_INTERVAL_S = 5.0


def build_protocols(settings: IngestWsServiceSettings) -> list[VenueProtocol]:
    """Protocols of the enabled venues. Raises ``ConfigError`` (e.g. an unknown symbol) early."""
    return [build_protocol(name, v) for name, v in settings.venues().items() if v.enabled]


class FeedSet:
    """The enabled venues and their shards, running until ``stop`` is set."""

    def __init__(
        self, settings: IngestWsServiceSettings, sink: Sink, book: CheckpointBook | None = None
    ) -> None:
        self.venues = [
            Venue(p, sink, settings.watchdog_interval_s, book) for p in build_protocols(settings)
        ]

    def resume(self, positions: dict[str, dict[str, Position]]) -> None:
        for v in self.venues:
            v.resume(positions.get(v.name, {}))

    def shards(self) -> list[object]:
        return [s for v in self.venues for s in v.shards]

    def ready(self) -> tuple[bool, str]:
        parts = [f"{v.name} {v.connected_shards()}/{len(v.shards)}" for v in self.venues]
        ok = all(v.connected_shards() == len(v.shards) for v in self.venues)
        return ok, ", ".join(parts) or "no venue enabled"

    def counters(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.venues:
            out[f"{v.name}_frames"] = v.frames
            for k, n in v.counters.items():
                out[f"{v.name}_{k}"] = n
            out[f"{v.name}_gaps_filled"] = v.backfiller.filled
            out[f"{v.name}_gaps_unrecoverable"] = v.backfiller.unrecoverable
        return out

    async def _rates(self, stop: asyncio.Event) -> None:
        last = {v.name: (v.frames, time.monotonic()) for v in self.venues}
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RATE_INTERVAL_S)
            for v in self.venues:
                frames, at = last[v.name]
                now = time.monotonic()
                metrics.MESSAGE_RATE.labels(v.name).set((v.frames - frames) / max(1e-6, now - at))
                last[v.name] = (v.frames, now)

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [
            asyncio.create_task(shard.run(stop), name=f"{v.name}-shard-{shard.label}")
            for v in self.venues
            for shard in v.shards
        ]
        tasks.append(asyncio.create_task(self._rates(stop), name="rates"))
        async with contextlib.AsyncExitStack() as backfills:
            for v in self.venues:
                await backfills.enter_async_context(v.backfiller)
            try:
                await asyncio.gather(*tasks)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)


async def main(settings: IngestWsServiceSettings, stop: asyncio.Event) -> None:
    """Run until ``stop``: connect every enabled venue and publish raw envelopes to Kafka."""
    feeds_stop = asyncio.Event()
    topics = settings.kafka.topics
    enabled = [name for name, v in settings.venues().items() if v.enabled]
    feeds_probe = build_protocols(settings)  # fail fast on bad symbols/channels
    del feeds_probe
    if settings.kafka.create_topics:
        wanted = {topics.raw(n) for n in enabled} | {topics.feed_status, topics.dlq}
        specs = [s for s in topics.specs(tuple(enabled)) if s.name in wanted]  # plugins too
        if settings.checkpoints:
            specs += [s for s in topics.internal_specs() if s.name == topics.ingest_checkpoints]
        await ensure_topics(settings.kafka, specs)
    book = CheckpointBook() if settings.checkpoints else None
    positions: dict[str, dict[str, Position]] = {}
    if book is not None:
        readers = {p.name: p.seq_points for p in build_protocols(settings)}
        positions = await load_positions(settings.kafka, readers)
        for venue, found in positions.items():
            for key, pos in found.items():
                book.load(venue, key, pos)
        log.info(
            "resuming streams",
            extra={"streams": {v: len(p) for v, p in positions.items() if p}},
        )
    async with KafkaProducer(settings.kafka) as producer:
        publisher = KafkaPublisher(
            producer, topics, settings.buffer_max_messages, settings.publish_batch_max
        )
        publisher.checkpoints = book
        await publisher.start()
        writer = (
            CheckpointWriter(producer, book, settings.checkpoint_interval_s)
            if book is not None
            else None
        )
        if writer is not None:
            await writer.start()
        feeds = FeedSet(settings, publisher, book)
        feeds.resume(positions)
        health = HealthServer(settings.http)
        health.add_check("feeds", feeds.ready)
        health.add_check(
            "publisher",
            lambda: (
                publisher.buffered() < settings.buffer_max_messages,
                f"buffered {publisher.buffered()}, errors {publisher.errors}",
            ),
        )
        async with health:
            reporter = HealthReporter(
                producer,
                health,
                settings.service_name,
                settings.health_interval_s,
                counters=lambda: {
                    **feeds.counters(),
                    "published": publisher.published,
                    "publish_errors": publisher.errors,
                    "dropped": publisher.dropped,
                },
                instance=settings.instance_id,
            )
            await reporter.start()
            runner = asyncio.create_task(feeds.run(feeds_stop), name="feeds")
            log.info("ingest-ws running", extra={"venues": enabled, "port": health.port})
            stop_wait = asyncio.create_task(stop.wait())
            await asyncio.wait({runner, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
            health.stopping = True
            feeds_stop.set()  # stop intake: close the WebSockets
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runner, settings.shutdown_timeout_s / 2)
            await reporter.aclose()
            await publisher.aclose(settings.shutdown_timeout_s / 2)
            if writer is not None:
                await writer.aclose()  # after the flush: the last acks are in the checkpoints
            if runner.done() and not runner.cancelled() and runner.exception() is not None:
                raise runner.exception()  # type: ignore[misc]
