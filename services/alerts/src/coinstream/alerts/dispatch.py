"""Outbox delivery: FIFO per destination, rate-limited, retried until delivered.

Each item belongs to the partition whose state queued it. Before sending, the dispatcher
claims the item in the store, which succeeds only while this replica still owns that
partition (its epoch), so a notification is never sent by two replicas; when a partition is
revoked, its queued items are dropped here (the next owner loads them) after its in-flight
deliveries finished. A 429 blocks the destination until ``Retry-After``; network errors and
5xx are retried with backoff forever; a rejected request (4xx) is retried
``ALERTS_MAX_PERMANENT_FAILURES`` times, then marked failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from typing import TYPE_CHECKING

from coinstream.alerts import metrics
from coinstream.alerts.delivery import Deliverer, RateLimiter, destination_of, min_interval_for
from coinstream.alerts.errors import DeliveryError
from coinstream.alerts.rules import TelegramReceiver
from coinstream.alerts.store import OutboxItem, TopicPartition
from coinstream.runtime import Backoff, ConfigurationError

if TYPE_CHECKING:
    from coinstream.alerts.service import AlertService

log = logging.getLogger(__name__)


class Dispatcher:
    """Delivers outbox items of the partitions this replica owns."""

    def __init__(self, service: AlertService, deliverer: Deliverer) -> None:
        self.service = service
        self.deliverer = deliverer
        self.queues: dict[str, deque[OutboxItem]] = {}
        self.limiters: dict[str, RateLimiter] = {}
        self.inflight: dict[str, tuple[OutboxItem, asyncio.Task[None]]] = {}
        self.wake = asyncio.Event()
        self.known: set[str] = set()

    def _destination(self, receiver_name: str) -> str:
        receiver = self.service.rules.receivers.get(receiver_name)
        return destination_of(receiver_name, receiver) if receiver else f"missing:{receiver_name}"

    def enqueue(self, item: OutboxItem) -> None:
        if item.id in self.known:
            return
        self.known.add(item.id)
        dest = self._destination(item.notification.receiver)
        self.queues.setdefault(dest, deque()).append(item)
        metrics.OUTBOX.inc()
        self.wake.set()

    async def release(self, tps: set[TopicPartition]) -> None:
        """Drop the queued items of these partitions, after their in-flight sends finished."""
        waiting = [task for item, task in self.inflight.values() if item.tp in tps]
        if waiting:
            await asyncio.gather(*waiting, return_exceptions=True)
        for dest, queue in self.queues.items():
            kept = deque(i for i in queue if i.tp not in tps)
            for item in queue:
                if item.tp in tps:
                    self.known.discard(item.id)
                    metrics.OUTBOX.dec()
            self.queues[dest] = kept

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def _limiters(self, dest: str, receiver_name: str) -> list[RateLimiter]:
        receiver = self.service.rules.receivers.get(receiver_name)
        if receiver is None:
            return []
        limiter = self.limiters.get(dest)
        if limiter is None:
            limiter = self.limiters[dest] = RateLimiter(min_interval_for(receiver))
        out = [limiter]
        if isinstance(receiver, TelegramReceiver):
            key = f"telegram-bot:{receiver.token_env}"
            bot = self.limiters.get(key)
            if bot is None:
                per_s = self.service.settings.telegram_global_per_s
                bot = self.limiters[key] = RateLimiter(1.0 / per_s)
            out.append(bot)
        return out

    async def run(self, stop: asyncio.Event) -> None:
        """Send whatever is due until ``stop``; in-flight sends finish (bounded by timeouts)."""
        while not stop.is_set():
            now = time.time()
            next_at = math.inf
            for dest, queue in self.queues.items():
                if not queue or dest in self.inflight:
                    continue
                item = queue[0]
                limiters = self._limiters(dest, item.notification.receiver)
                ready = max([item.next_attempt_at, *(lim.ready_at() for lim in limiters)])
                if ready <= now:
                    task = asyncio.create_task(self._send(dest, item, limiters))
                    self.inflight[dest] = (item, task)
                else:
                    next_at = min(next_at, ready)
            self.wake.clear()
            timeout = min(max(next_at - time.time(), 0.001), 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=timeout)
        if self.inflight:
            await asyncio.gather(*(t for _, t in self.inflight.values()), return_exceptions=True)

    def _done(self, dest: str, item: OutboxItem) -> None:
        queue = self.queues.get(dest)
        if queue and queue[0] is item:
            queue.popleft()
            metrics.OUTBOX.dec()
        self.known.discard(item.id)

    async def _send(self, dest: str, item: OutboxItem, limiters: list[RateLimiter]) -> None:
        n = item.notification
        service = self.service
        store = service.store
        try:
            if not await store.claim(service.settings.group_id, item):
                log.info(
                    "notification handed over to the partition's new owner", extra={"id": n.id}
                )
                self._done(dest, item)
                return
            receiver = service.rules.receivers.get(n.receiver)
            now = time.time()
            for lim in limiters:
                lim.sent(now)
            try:
                if receiver is None:
                    raise DeliveryError(
                        f"{n.receiver}: receiver no longer configured", retriable=False
                    )
                await self.deliverer.deliver(n.receiver, receiver, n)
            except (DeliveryError, ConfigurationError) as exc:
                await self._failed(dest, item, exc, limiters)
                return
            sent_at = time.time()
            self._done(dest, item)
            metrics.NOTIFICATIONS_SENT.labels(n.receiver).inc()
            metrics.DELIVERY_SECONDS.observe(max(0.0, sent_at - n.created_at))
            log.info(
                "notification delivered",
                extra={"receiver": n.receiver, "alerts": len(n.fingerprints), "id": n.id},
            )
            await store.mark_sent(n.id)
            await service.notified(n, sent_at)
        except Exception:
            log.exception("delivery bookkeeping failed", extra={"receiver": n.receiver})
            item.next_attempt_at = time.time() + 1.0
        finally:
            self.inflight.pop(dest, None)
            self.wake.set()

    async def _failed(
        self, dest: str, item: OutboxItem, exc: Exception, limiters: list[RateLimiter]
    ) -> None:
        n = item.notification
        settings = self.service.settings
        retriable = bool(getattr(exc, "retriable", False))
        retry_after = getattr(exc, "retry_after", None)
        item.attempts += 1
        item.last_error = str(exc)
        kind = (
            "rate_limited"
            if retry_after is not None
            else ("retriable" if retriable else "rejected")
        )
        metrics.DELIVERY_FAILURES.labels(n.receiver, kind).inc()
        now = time.time()
        if retry_after is not None:
            delay = retry_after
            for lim in limiters:
                lim.block(now + retry_after)
        else:
            backoff = Backoff(initial=settings.retry_initial_s, maximum=settings.retry_max_s)
            delay = backoff.delay_for(item.attempts - 1)
        log.warning(
            "notification not delivered",
            extra={
                "receiver": n.receiver,
                "error": str(exc),
                "attempts": item.attempts,
                "retry_in_s": delay,
            },
        )
        if (
            not retriable
            and isinstance(exc, DeliveryError)
            and item.attempts >= settings.max_permanent_failures
        ):
            self._done(dest, item)
            log.error("notification failed permanently", extra={"receiver": n.receiver, "id": n.id})
            await self.service.store.mark_failed(item)
            return
        item.next_attempt_at = now + delay
        await self.service.store.reschedule(item)
