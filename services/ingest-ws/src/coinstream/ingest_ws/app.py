"""Wiring and lifespan of ingest-ws: venues and shards, the Kafka publisher, health, reporting.

Replicas share the streams through the consumer group ``group_id`` on the work topic
(``WorkLeases``); ``FeedRunner`` runs the feeds of the jobs this replica owns and rebuilds
them when ownership changes. One replica alone owns every job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection

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
from coinstream.ingest_ws.work import StreamJobs
from coinstream.runtime import (
    HealthReporter,
    HealthServer,
    KafkaProducer,
    WorkLeases,
    ensure_topics,
)

log = logging.getLogger(__name__)

RATE_INTERVAL_S = 5.0


def build_protocols(settings: IngestWsServiceSettings) -> list[VenueProtocol]:
    """Protocols of the enabled venues. Raises ``ConfigError`` (e.g. an unknown symbol) early."""
    return [build_protocol(name, v) for name, v in settings.venues().items() if v.enabled]


class FeedSet:
    """The enabled venues and their shards, running until ``stop`` is set. With ``jobs``,
    only the streams of those jobs (venues without any are left out)."""

    def __init__(
        self,
        settings: IngestWsServiceSettings,
        sink: Sink,
        book: CheckpointBook | None = None,
        jobs: Collection[str] | None = None,
    ) -> None:
        venues = [
            Venue(p, sink, settings.watchdog_interval_s, book, jobs)
            for p in build_protocols(settings)
        ]
        self.venues = [v for v in venues if jobs is None or v.shards]

    def resume(self, positions: dict[str, dict[str, Position]]) -> None:
        for v in self.venues:
            v.resume(positions.get(v.name, {}))

    def shards(self) -> list[object]:
        return [s for v in self.venues for s in v.shards]

    def ready(self) -> tuple[bool, str]:
        parts = [f"{v.name} {v.connected_shards()}/{len(v.shards)}" for v in self.venues]
        ok = all(v.connected_shards() == len(v.shards) for v in self.venues)
        return ok, ", ".join(parts) or "no stream held here"

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


class FeedRunner:
    """Runs a ``FeedSet`` for the jobs this replica owns and rebuilds it when they change.

    A change stops the current feeds (their connections close), sends what they offered and
    waits for the acknowledgements, writes the checkpoints, and forgets the streams that moved
    away (the checkpoint book keeps only owned streams). The new feeds start from where each
    stream left off: the checkpoints (written by this or another replica) advanced by the raw
    records acknowledged after them (``load_positions``). A stream that arrives therefore
    reports the trades it missed during the handover as a ``gap`` and backfills them.

    ``on_revoked`` is the leases' rebalance hook: it returns once the feeds of the jobs taken
    away have stopped, so their next owner starts only after this one let go.
    """

    def __init__(
        self,
        settings: IngestWsServiceSettings,
        publisher: KafkaPublisher,
        book: CheckpointBook | None,
        writer: CheckpointWriter | None,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.book = book
        self.writer = writer
        self.leases: WorkLeases | None = None  # None: every job (see ``follow``)
        self.jobs = StreamJobs(build_protocols(settings))
        self.feeds: FeedSet | None = None
        self.running: frozenset[str] = frozenset()
        self.rebuilds = 0
        self._task: asyncio.Task[None] | None = None
        self._feeds_stop = asyncio.Event()
        self._past: dict[str, int] = {}  # counters of the feeds already stopped
        self._version = 0  # ownership changes seen
        self._applied = 0  # the change the running feeds follow
        self._wake = asyncio.Event()
        self._alive = False

    def follow(self, leases: WorkLeases) -> None:
        """Hold the jobs ``leases`` says are this replica's (create the leases with
        ``on_revoked=self.on_revoked``)."""
        self.leases = leases
        leases.add_listener(self._changed)

    def _changed(self) -> None:
        self._version += 1
        self._wake.set()

    def _target(self) -> frozenset[str]:
        leases = self.leases
        if leases is None:
            return self.jobs.all()
        return self.jobs.owned(leases.owns) if leases.assigned else frozenset()

    async def on_revoked(self, _: frozenset[int]) -> None:
        """Wait (bounded) until the feeds follow the ownership without the revoked jobs."""
        wanted = self._version
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.shutdown_timeout_s):
                while self._applied < wanted and self._alive:
                    self._wake.set()
                    await asyncio.sleep(0.02)

    # -- health -------------------------------------------------------------------------------
    def readiness(self) -> tuple[bool, str]:
        """The ``work`` check: not ready until the first assignment; then the jobs held."""
        if self.leases is None:
            return True, f"owns {len(self.running)} of {self.jobs.total} streams (not shared)"
        ok, detail = self.leases.readiness()
        if not ok:
            return False, f"owns no streams yet: {detail}"
        if self._applied < self._version and self.running != self._target():
            return False, f"moving streams (owns {len(self._target())} of {self.jobs.total})"
        return True, f"owns {len(self.running)} of {self.jobs.total} streams ({detail[5:]})"

    def ready(self) -> tuple[bool, str]:
        """The ``feeds`` check of the feeds running now."""
        if self.feeds is None:
            return True, "no stream held here"
        return self.feeds.ready()

    def counters(self) -> dict[str, int]:
        out = dict(self._past)
        if self.feeds is not None:
            for k, n in self.feeds.counters().items():
                out[k] = out.get(k, 0) + n
        return out

    # -- running --------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Follow the ownership until ``stop``; raises if the feeds fail."""
        stop_wait = asyncio.create_task(stop.wait())
        self._alive = True
        try:
            while not stop.is_set():
                self._wake.clear()
                version = self._version
                target = self._target()
                if target != self.running or (self.feeds is None and target):
                    await self._stop_feeds()
                    if self.book is not None:
                        self.book.retain(self.jobs.keeper(target))
                    if target:
                        await self._start_feeds(target)
                    self.running = target
                    self._publish_metrics()
                self._applied = version
                if self._version != version:
                    continue
                wake = asyncio.create_task(self._wake.wait())
                waits: set[asyncio.Future[object]] = {wake, stop_wait}  # type: ignore[arg-type]
                if self._task is not None:
                    waits.add(self._task)  # type: ignore[arg-type]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                wake.cancel()
                task = self._task
                if task is not None and task.done() and not task.cancelled():
                    error = task.exception()
                    if error is not None:
                        raise error
                    log.error("every feed stopped for good; stopping")  # as a lone replica does
                    return
        finally:
            stop_wait.cancel()
            await self._stop_feeds()
            self.running = frozenset()
            self._applied = self._version
            self._alive = False

    async def _start_feeds(self, jobs: frozenset[str]) -> None:
        feeds = FeedSet(self.settings, self.publisher, self.book, jobs)
        if self.book is not None and feeds.venues:
            readers = {p.name: p.seq_points for p in build_protocols(self.settings)}
            readers = {v.name: readers[v.name] for v in feeds.venues}
            keep = self.jobs.keeper(jobs)
            try:
                loaded = await load_positions(self.settings.kafka, readers)
            except Exception as exc:  # the broker is away: resume from what this replica knows
                log.warning(
                    "checkpoints not read; streams new to this replica start without them",
                    extra={"error": repr(exc)},
                )
                loaded = {}
            for venue, found in loaded.items():
                for key, pos in found.items():
                    if keep(venue, key):
                        self.book.merge(venue, key, pos)
            positions: dict[str, dict[str, Position]] = {}
            for (venue, key), pos in self.book.positions.items():
                positions.setdefault(venue, {})[key] = pos
            feeds.resume(positions)
            log.info(
                "resuming streams",
                extra={"streams": {v: len(p) for v, p in positions.items() if p}},
            )
        self.feeds = feeds
        self.rebuilds += 1
        self._feeds_stop = asyncio.Event()
        self._task = asyncio.create_task(feeds.run(self._feeds_stop), name="feeds")
        log.info(
            "feeds started",
            extra={"jobs": sorted(jobs), "owned": len(jobs), "total": self.jobs.total},
        )

    async def _stop_feeds(self) -> None:
        """Close the feeds' connections, send what they offered, write the checkpoints."""
        task, self._task = self._task, None
        feeds, self.feeds = self.feeds, None
        if task is None or feeds is None:
            return
        budget = self.settings.shutdown_timeout_s / 2
        self._feeds_stop.set()
        done, _ = await asyncio.wait({task}, timeout=budget)
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for k, n in feeds.counters().items():
            self._past[k] = self._past.get(k, 0) + n
        if not await self.publisher.flush(budget):
            log.warning("feeds stopped with envelopes unacknowledged; the checkpoints lag")
        if self.writer is not None:
            await self.writer.write()
        log.info("feeds stopped", extra={"jobs": sorted(self.running)})

    def _publish_metrics(self) -> None:
        for venue, n in self.jobs.per_venue(self.running).items():
            metrics.OWNED_JOBS.labels(venue).set(n)


async def main(settings: IngestWsServiceSettings, stop: asyncio.Event) -> None:
    """Run until ``stop``: hold the feeds of the jobs this replica owns and publish raw
    envelopes to Kafka."""
    topics = settings.kafka.topics
    enabled = [name for name, v in settings.venues().items() if v.enabled]
    feeds_probe = build_protocols(settings)  # fail fast on bad symbols/channels
    del feeds_probe
    if settings.kafka.create_topics:
        wanted = {topics.raw(n) for n in enabled} | {topics.feed_status, topics.dlq}
        specs = [s for s in topics.specs(tuple(enabled)) if s.name in wanted]  # plugins too
        internal = {topics.ingest_ws_work} | (
            {topics.ingest_checkpoints} if settings.checkpoints else set()
        )
        specs += [
            s
            for s in topics.internal_specs(work_partitions=settings.work_partitions)
            if s.name in internal
        ]
        await ensure_topics(settings.kafka, specs)
    book = CheckpointBook() if settings.checkpoints else None
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
        feeds = FeedRunner(settings, publisher, book, writer)
        leases = WorkLeases(
            settings.kafka, topics.ingest_ws_work, settings.group_id, on_revoked=feeds.on_revoked
        )
        feeds.follow(leases)
        leases.add_listener(lambda: metrics.WORK_PARTITIONS_OWNED.set(len(leases.owned)))
        health = HealthServer(settings.http)
        health.add_check("work", feeds.readiness)
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
                    "owned_streams": len(feeds.running),
                    "published": publisher.published,
                    "publish_errors": publisher.errors,
                    "dropped": publisher.dropped,
                },
                instance=settings.instance_id,
            )
            await reporter.start()
            feeds_stop = asyncio.Event()
            runner = asyncio.create_task(feeds.run(feeds_stop), name="feed-runner")
            await leases.start()
            log.info("ingest-ws running", extra={"venues": enabled, "port": health.port})
            stop_wait = asyncio.create_task(stop.wait())
            await asyncio.wait({runner, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
            health.stopping = True
            feeds_stop.set()  # stop intake: close the WebSockets, flush, write checkpoints
            done, _ = await asyncio.wait({runner}, timeout=settings.shutdown_timeout_s)
            if not done:
                runner.cancel()
                await asyncio.gather(runner, return_exceptions=True)
            await leases.aclose()  # leave the group after the feeds stopped: no overlap
            await reporter.aclose()
            await publisher.aclose(settings.shutdown_timeout_s / 2)
            if writer is not None:
                await writer.aclose()  # after the flush: the last acks are in the checkpoints
            if runner.done() and not runner.cancelled() and runner.exception() is not None:
                raise runner.exception()  # type: ignore[misc]
