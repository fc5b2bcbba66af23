"""The stateful core around the pure engine: event intake, persistence, publishing, outbox.

``AlertService.handle_batch()`` evaluates a batch of records, publishes every state change to
``coinstream.alerts.v1``, groups notifications into the outbox and saves the whole state with
the offsets it covers. ``Dispatcher`` delivers the outbox with per-destination rate limits and
retries (honouring 429 ``Retry-After``) until delivered: nothing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any

from pydantic import ValidationError

from coinstream.alerts import metrics
from coinstream.alerts.delivery import (
    Deliverer,
    RateLimiter,
    destination_of,
    min_interval_for,
)
from coinstream.alerts.engine import Alert, Engine, Transition
from coinstream.alerts.errors import DeliveryError, EvaluationError
from coinstream.alerts.grouping import Grouper, Notification
from coinstream.alerts.rules import RulesFile, TelegramReceiver
from coinstream.alerts.settings import AlertsSettings
from coinstream.alerts.silences import Silence, silenced_by
from coinstream.alerts.store import Loaded, Offsets, OutboxItem, Store
from coinstream.runtime import Backoff, ConfigurationError, DeadLetterPublisher, KafkaProducer
from coinstream.runtime.batching import OutRecord
from coinstream.schemas import (
    AlertEvent,
    Event,
    FeedStatusEvent,
    PriceEvent,
    SentimentEvent,
    ServiceHealthEvent,
    decode_event,
    describe_error,
    deterministic_id,
    limits,
)

log = logging.getLogger(__name__)


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _kind(event: Event) -> str:
    return getattr(event, "type", type(event).__name__)


def _fitting(text: str | None) -> Decimal | None:
    """A computed figure as the contract carries it, or None when it cannot (a percent
    change of 1e150 from absurd but valid prices): the summary still states it."""
    if text is None:
        return None
    value = Decimal(text)
    try:
        return limits.check_decimal(value)
    except ValueError:
        exponent = value.as_tuple().exponent
        if value.is_finite() and isinstance(exponent, int) and abs(value) < limits.MAX_ABS_DECIMAL:
            return value.quantize(_FINEST, context=_WIDE)  # only too many fraction digits
        return None


_FINEST = Decimal(1).scaleb(-limits.MAX_FRACTION_DIGITS)
_WIDE = Context(prec=2 * (limits.MAX_INTEGER_DIGITS + limits.MAX_FRACTION_DIGITS))


def alert_event(
    alert: Alert | dict[str, Any], status: str, at: float, receivers: Iterable[str] = ()
) -> AlertEvent:
    """The ``coinstream.alerts.v1`` record of one state change."""
    a = alert.dump() if isinstance(alert, Alert) else alert
    when = _dt(at)
    assert when is not None
    return AlertEvent(
        event_id=deterministic_id("alert-event", a["fingerprint"], status, f"{at:.6f}", *receivers),
        event_time=when,
        received_at=datetime.now(UTC),
        source="alerts",
        fingerprint=a["fingerprint"],
        rule_id=a["rule_id"],
        rule_type=a["rule_type"],
        status=status,  # type: ignore[arg-type]
        severity=a["severity"],
        subject=a["subject"],
        summary=a["summary"],
        labels=a["labels"],
        value=_fitting(a["value"]),
        threshold=_fitting(a["threshold"]),
        starts_at=_dt(a["fired_at"] or a["active_since"]),
        ends_at=_dt(a["ends_at"]),
        receivers=tuple(receivers) or tuple(a["receivers"]),
    )


class AlertService:
    """Owns the engine, grouping, silences and outbox; all mutation happens under ``lock``."""

    def __init__(
        self,
        settings: AlertsSettings,
        rules: RulesFile,
        store: Store,
        producer: KafkaProducer,
        deliverer: Deliverer,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.store = store
        self.producer = producer
        self.topic = producer.settings.topics.alerts
        self.dlq = DeadLetterPublisher(producer, settings.service_name)
        self.engine = Engine(rules)
        self.grouper = Grouper(rules.grouping)
        self.silences: dict[str, Silence] = {}
        self.saved_offsets: Offsets = {}
        self.offsets: Offsets = {}
        self.new_outbox: list[OutboxItem] = []
        self.lock = asyncio.Lock()
        self.last_save = 0.0
        self.store_ok = True
        self.dispatcher = Dispatcher(self, deliverer)
        self.stop: asyncio.Event | None = None  # set by the app: ends retries when stopping

    # ----------------------------------------------------------------------------- state
    async def restore(self) -> None:
        loaded: Loaded = await self.store.load(self.settings.group_id)
        if loaded.snapshot:
            self.engine.load(loaded.snapshot.get("engine", {}))
            self.grouper.load(loaded.snapshot.get("groups", []))
        self.saved_offsets = dict(loaded.offsets)
        self.silences = {s.id: s for s in loaded.silences}
        for item in loaded.outbox:
            self.dispatcher.enqueue(item)
        self._gauges()
        log.info(
            "state restored",
            extra={
                "alerts": len(self.engine.alerts),
                "outbox": len(loaded.outbox),
                "silences": len(self.silences),
                "durable": self.store.durable,
            },
        )

    def snapshot(self) -> dict[str, Any]:
        return {"engine": self.engine.dump(), "groups": self.grouper.dump()}

    async def save(self) -> Offsets:
        """Persist state, offsets and new outbox rows together; then hand the rows over."""
        offsets, new = dict(self.offsets), list(self.new_outbox)
        try:
            await self.store.save(self.settings.group_id, self.snapshot(), offsets, new)
        except Exception:
            self.store_ok = False
            raise
        self.store_ok = True
        metrics.STATE_SAVES.inc()
        self.saved_offsets.update(offsets)
        self.offsets.clear()
        self.new_outbox.clear()
        self.last_save = time.monotonic()
        for item in new:
            self.dispatcher.enqueue(item)
        return offsets

    # ---------------------------------------------------------------------------- intake
    async def handle_batch(self, records: list[Any], now: float | None = None) -> Offsets:
        """Evaluate records (aiokafka ``ConsumerRecord``s) and a tick; return saved offsets."""
        now = time.time() if now is None else now
        async with self.lock:
            transitions: list[Transition] = []
            dead: list[OutRecord] = []
            for rec in records:
                reason: str | None = None
                error: Exception | None = None
                try:
                    if rec.value is None:
                        raise ValueError("tombstone (the record has no value)")
                    event = decode_event(rec.value)
                except ValidationError as exc:
                    metrics.DECODE_ERRORS.inc()
                    reason, error = f"not a canonical event: {describe_error(exc)}", exc
                except ValueError as exc:
                    metrics.DECODE_ERRORS.inc()
                    reason, error = f"not a canonical event: {exc}", exc
                else:
                    if isinstance(
                        event, PriceEvent | SentimentEvent | FeedStatusEvent | ServiceHealthEvent
                    ):
                        metrics.EVENTS.labels(_kind(event)).inc()
                        try:
                            transitions.extend(self.engine.process(event, now))
                        except EvaluationError as exc:
                            metrics.EVALUATION_ERRORS.inc()
                            transitions.extend(exc.transitions)
                            reason, error = f"alert evaluation failed: {exc}", exc
                if reason is not None and error is not None:
                    dead.append(
                        self.dlq.letter(
                            rec.value,
                            reason=reason,
                            error=error,
                            origin_topic=rec.topic,
                            origin_partition=rec.partition,
                            origin_offset=rec.offset,
                            key=rec.key,
                        )
                    )
                self.offsets[(rec.topic, rec.partition)] = rec.offset + 1
            transitions.extend(self.engine.tick(now))
            changed = await self._after(transitions, now)
            await self.dlq.deliver(dead, stop=self.stop)
            due = time.monotonic() - self.last_save >= self.settings.state_flush_interval_s
            if changed or self.new_outbox or (self.offsets and due):
                return await self.save()
            return {}

    async def _after(self, transitions: list[Transition], now: float) -> bool:
        """Publish transitions, feed the grouper, move due groups to the outbox."""
        futures = []
        silences = list(self.silences.values())
        for t in transitions:
            metrics.TRANSITIONS.labels(t.status).inc()
            futures.append(await self._publish(alert_event(t.alert, t.status, t.at)))
            self.grouper.add(t, now)
            if t.status == "firing" and silenced_by(silences, t.alert.labels, now):
                metrics.SILENCED.inc()
                futures.append(await self._publish(alert_event(t.alert, "silenced", now)))
        notes = self.grouper.due(now, lambda labels: silenced_by(silences, labels, now) is not None)
        for n in notes:
            metrics.NOTIFICATIONS_QUEUED.labels(n.receiver).inc()
            self.new_outbox.append(OutboxItem(n, next_attempt_at=now))
        if futures:
            await asyncio.gather(*futures)
        self._gauges()
        return bool(transitions or notes)

    async def _publish(self, event: AlertEvent) -> asyncio.Future[Any]:
        return await self.producer.send(self.topic, event.to_json(), key=event.key)

    def _gauges(self) -> None:
        states = [a.status for a in self.engine.alerts.values()]
        metrics.FIRING.set(states.count("firing"))
        metrics.PENDING.set(states.count("pending"))

    def next_wakeup(self) -> float | None:
        return self.grouper.next_due()

    # ------------------------------------------------------------------- rules, silences
    async def set_rules(self, rules: RulesFile) -> None:
        """Swap in validated rules (reload); alerts of removed/changed rules resolve."""
        self.dispatcher.deliverer.check(rules)
        async with self.lock:
            now = time.time()
            transitions = self.engine.set_rules(rules, now)
            self.rules = rules
            self.grouper.grouping = rules.grouping
            await self._after(transitions, now)
            await self.save()
        metrics.RULES.set(len(rules.active_rules))

    async def add_silence(self, silence: Silence) -> None:
        await self.store.put_silence(silence)
        self.silences[silence.id] = silence

    async def expire_silence(self, silence_id: str, now: float) -> Silence | None:
        silence = self.silences.get(silence_id)
        if silence is None:
            return None
        silence = silence.model_copy(update={"ends_at": min(silence.ends_at, now)})
        await self.store.put_silence(silence)
        self.silences[silence_id] = silence
        return silence

    async def notified(self, n: Notification, now: float) -> None:
        futures = [
            await self._publish(alert_event(a, "notified", now, [n.receiver]))
            for a in [*n.firing, *n.resolved]
        ]
        await asyncio.gather(*futures)


class Dispatcher:
    """Delivers outbox items: FIFO per destination, rate-limited, retried until delivered."""

    def __init__(self, service: AlertService, deliverer: Deliverer) -> None:
        self.service = service
        self.deliverer = deliverer
        self.queues: dict[str, deque[OutboxItem]] = {}
        self.limiters: dict[str, RateLimiter] = {}
        self.inflight: dict[str, asyncio.Task[None]] = {}
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
                    self.inflight[dest] = asyncio.create_task(self._send(dest, item, limiters))
                else:
                    next_at = min(next_at, ready)
            self.wake.clear()
            timeout = min(max(next_at - time.time(), 0.001), 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=timeout)
        if self.inflight:
            await asyncio.gather(*self.inflight.values(), return_exceptions=True)

    async def _send(self, dest: str, item: OutboxItem, limiters: list[RateLimiter]) -> None:
        n = item.notification
        store = self.service.store
        try:
            receiver = self.service.rules.receivers.get(n.receiver)
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
            self.queues[dest].popleft()
            self.known.discard(n.id)
            metrics.OUTBOX.dec()
            metrics.NOTIFICATIONS_SENT.labels(n.receiver).inc()
            metrics.DELIVERY_SECONDS.observe(max(0.0, sent_at - n.created_at))
            log.info(
                "notification delivered",
                extra={"receiver": n.receiver, "alerts": len(n.fingerprints), "id": n.id},
            )
            await store.mark_sent(n.id)
            await self.service.notified(n, sent_at)
        except Exception:
            log.exception("delivery bookkeeping failed", extra={"receiver": n.receiver})
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
            self.queues[dest].popleft()
            self.known.discard(n.id)
            metrics.OUTBOX.dec()
            log.error("notification failed permanently", extra={"receiver": n.receiver, "id": n.id})
            await self.service.store.mark_failed(item)
            return
        item.next_attempt_at = now + delay
        await self.service.store.reschedule(item)
