"""Wiring and lifespan of the alerts service.

Start-up: validate the rules file and the receivers' secrets (refuse to start otherwise),
open the store, start the HTTP server, producer, consumer, dispatcher and health reporter.
Running: join the consumer group; load the state of each assigned partition; consume prices,
sentiment and feed status; evaluate; save; deliver. Several replicas share the work: on a
rebalance, revoked partitions are saved and handed over, assigned ones loaded.
Stop (SIGTERM): stop intake, save state with the offsets it covers, commit, let in-flight
deliveries finish, close. Undelivered notifications stay in the outbox for the next owner.
SIGHUP or ``POST /-/reload`` reloads the rules; a bad file keeps the old rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

import httpx
from aiokafka import ConsumerRebalanceListener
from aiokafka.structs import TopicPartition

from coinstream.alerts import api, metrics
from coinstream.alerts.delivery import Deliverer, check_secrets
from coinstream.alerts.errors import RulesError
from coinstream.alerts.rules import RulesFile, load_rules
from coinstream.alerts.service import AlertService
from coinstream.alerts.settings import AlertsSettings
from coinstream.alerts.store import MemoryStore, PostgresStore, Store
from coinstream.runtime import (
    Backoff,
    HealthReporter,
    HealthServer,
    KafkaConsumer,
    KafkaProducer,
    StoppedError,
    ensure_topics,
    sleep_unless_stopped,
)

log = logging.getLogger(__name__)


class _Handover(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions change hands: save and let go of the revoked ones (their deliveries finish
    first), load the assigned ones and continue from the offsets saved with their state (they
    win over Kafka's). aiokafka awaits both before the group moves on, so a partition's next
    owner starts only after its previous owner saved it."""

    def __init__(self, service: AlertService) -> None:
        self.service = service
        self.consumer: KafkaConsumer | None = None
        self.assigned = False

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        saved = await self.service.revoke([(tp.topic, tp.partition) for tp in revoked])
        if saved and self.consumer is not None:
            await _commit(self.consumer, saved)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        assert self.consumer is not None
        raw = self.consumer.raw
        for topic in {tp.topic for tp in assigned}:
            partitions = raw.partitions_for_topic(topic)
            if partitions:
                self.service.partition_counts[topic] = len(partitions)
        seeks = await self.service.assign([(tp.topic, tp.partition) for tp in assigned])
        for (topic, partition), offset in seeks.items():
            raw.seek(TopicPartition(topic, partition), offset)
        self.assigned = True


def watched_topics(settings: AlertsSettings) -> list[str]:
    t = settings.kafka.topics
    return [t.prices, t.sentiment, t.feed_status]


async def open_store(settings: AlertsSettings) -> Store:
    if settings.database_url is None:
        log.warning("no ALERTS_DATABASE_URL/DATABASE_URL: alert state and outbox kept in memory")
        return MemoryStore()
    return await PostgresStore.open(settings.database_url.get_secret_value())


async def main(settings: AlertsSettings, stop: asyncio.Event) -> None:
    """Run the alerts service until ``stop`` is set."""
    for noisy in ("httpx", "httpcore"):  # their request logs would print webhook URLs
        logging.getLogger(noisy).setLevel(logging.WARNING)
    rules = load_rules(settings.rules_file)  # RulesError: refuse to start
    check_secrets(settings, rules)  # a missing secret: refuse to start
    if settings.kafka.create_topics:
        await ensure_topics(settings.kafka, settings.kafka.topics.specs())
    store = await open_store(settings)
    try:
        async with httpx.AsyncClient(timeout=settings.http_timeout_s) as client:
            deliverer = Deliverer(settings, client)
            async with KafkaProducer(settings.kafka) as producer:
                service = AlertService(settings, rules, store, producer, deliverer)
                await service.load_silences()
                await _serve(settings, service, producer, stop)
    finally:
        await store.aclose()


async def _serve(
    settings: AlertsSettings, service: AlertService, producer: KafkaProducer, stop: asyncio.Event
) -> None:
    metrics.RULES.set(len(service.rules.active_rules))

    async def reload() -> int:
        try:
            rules: RulesFile = load_rules(settings.rules_file)
            await service.set_rules(rules)
        except Exception as exc:
            metrics.RELOADS.labels("failed").inc()
            log.error("rules reload failed; keeping the previous rules", extra={"error": str(exc)})
            raise
        metrics.RELOADS.labels("ok").inc()
        log.info("rules reloaded", extra={"rules": len(rules.active_rules)})
        return len(rules.active_rules)

    listener = _Handover(service)
    health = HealthServer(settings.http, extra_routes=api.routes(service, reload))
    health.add_check(
        "store", lambda: (service.store_ok, "ok" if service.store_ok else "save failed")
    )
    health.add_check(
        "kafka", lambda: (listener.assigned, "assigned" if listener.assigned else "joining")
    )
    consumer = KafkaConsumer(
        settings.kafka,
        watched_topics(settings),
        settings.group_id,
        listener=listener,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    listener.consumer = consumer
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[Any]] = set()

    def on_sighup() -> None:
        task = loop.create_task(_quiet(reload()))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    dispatch_stop = asyncio.Event()
    try:
        async with health, consumer:
            reporter = HealthReporter(
                producer,
                health,
                settings.service_name,
                settings.health_interval_s,
                counters=lambda: _counters(service),
                instance=settings.instance_id,
            )
            async with reporter:
                dispatcher = asyncio.create_task(
                    service.dispatcher.run(dispatch_stop), name="dispatcher"
                )
                try:
                    await _consume(settings, service, consumer, stop)
                finally:
                    health.stopping = True
                    dispatch_stop.set()
                    service.dispatcher.wake.set()
                    await dispatcher
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGHUP)
        for task in list(reloads):
            task.cancel()


async def _quiet(coro: Any) -> None:
    with contextlib.suppress(RulesError, Exception):
        await coro


def _counters(service: AlertService) -> dict[str, int]:
    return {
        "alerts_firing": sum(1 for a in service.alerts() if a.status == "firing"),
        "outbox_pending": service.dispatcher.pending,
        "partitions": len(service.partitions),
    }


async def _consume(
    settings: AlertsSettings, service: AlertService, consumer: KafkaConsumer, stop: asyncio.Event
) -> None:
    """Intake loop: each iteration evaluates what arrived plus a clock tick, then commits.

    A failed save (the database is down) keeps the unsaved progress in memory and is tried
    again with capped backoff; stopping meanwhile leaves it for the next start to re-read."""
    tick_ms = int(settings.tick_interval_s * 1000)
    backoff = Backoff(initial=settings.retry_initial_s, maximum=min(settings.retry_max_s, 30.0))
    service.stop = stop
    while not stop.is_set():
        wake = service.next_wakeup()
        timeout = tick_ms
        if wake is not None:
            timeout = max(0, min(tick_ms, int((wake - time.time()) * 1000)))
        batch = await consumer.getmany(timeout_ms=timeout, max_records=2000)
        records = {(tp.topic, tp.partition): recs for tp, recs in batch.items()}
        try:
            saved = await service.handle_batch(records)
        except StoppedError:
            break
        except Exception as exc:
            # Unsaved progress stays in memory (offsets, outbox rows) and is saved next time.
            delay = backoff.next_delay()
            log.warning(
                "state not saved; retrying",
                extra={"error": f"{type(exc).__name__}: {exc}"[:500], "retry_in_s": delay},
            )
            try:
                await sleep_unless_stopped(delay, stop)
            except StoppedError:
                break
            continue
        backoff.reset()
        if saved:
            await _commit(consumer, saved)
    # stop: save what was processed so a restart continues exactly here
    with contextlib.suppress(Exception):
        async with service.lock:
            saved = await service.save()
        await _commit(consumer, saved)
    service.partitions.clear()  # leaving the group: nothing more is ours


async def _commit(consumer: KafkaConsumer, saved: dict[tuple[str, int], int]) -> None:
    offsets = {TopicPartition(t, p): o for (t, p), o in saved.items()}
    try:
        await consumer.commit(offsets)
    except Exception as exc:  # the store holds the truth; Kafka's commit is advisory here
        log.warning("offset commit failed", extra={"error": repr(exc)})
