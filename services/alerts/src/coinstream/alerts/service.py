"""The stateful core around the pure engine: partitions, intake, persistence, publishing.

Replicas share the topics: each owns the partitions Kafka assigns it. A ``Partition`` holds
everything about one (topic, partition): the engine state of the subjects keyed to it (prices
are keyed by symbol, so all venues of a symbol meet in one partition), its notification
groups, the offset its state covers and its undelivered notifications. On assignment the
partition's saved state and outbox are loaded (``assign``); on revocation they are saved and
its deliveries finish first (``revoke``), so the next owner continues exactly there.

``AlertService.handle_batch()`` evaluates a batch of records, publishes every state change to
``coinstream.alerts.v1``, groups notifications into the outbox and saves the changed
partitions' state with the offsets it covers. ``Dispatcher`` (``dispatch.py``) delivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any

from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from coinstream.alerts import metrics
from coinstream.alerts.delivery import Deliverer
from coinstream.alerts.dispatch import Dispatcher
from coinstream.alerts.engine import Alert, Engine, Transition
from coinstream.alerts.errors import EvaluationError
from coinstream.alerts.grouping import Grouper, Notification
from coinstream.alerts.rules import RulesFile
from coinstream.alerts.settings import AlertsSettings
from coinstream.alerts.silences import Silence, silenced_by
from coinstream.alerts.store import (
    Acquired,
    FencedError,
    Offsets,
    OutboxItem,
    PartitionSave,
    Store,
    TopicPartition,
)
from coinstream.alerts.ticks import tick_from_record
from coinstream.runtime import Backoff, DeadLetterPublisher, KafkaProducer, sleep_unless_stopped
from coinstream.runtime.batching import OutRecord
from coinstream.schemas import (
    AlertEvent,
    FeedStatusEvent,
    PriceEvent,
    SentimentEvent,
    ServiceHealthEvent,
    decode_event,
    describe_error,
    deterministic_id,
    limits,
)
from coinstream.schemas.fastcodec import read_price

log = logging.getLogger(__name__)
_EVENT_TYPES = (PriceEvent, SentimentEvent, FeedStatusEvent, ServiceHealthEvent)
_partitioner = DefaultPartitioner()


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


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


class Partition:
    """The state of one (topic, partition) this replica owns."""

    def __init__(
        self,
        tp: TopicPartition,
        kind: str,
        rules: RulesFile,
        epoch: int,
        owns: Callable[[str], bool] | None,
    ) -> None:
        self.tp = tp
        self.kind = kind
        self.epoch = epoch
        self.engine = Engine(rules, kinds=frozenset({kind}), owns=owns)
        self.grouper = Grouper(rules, scope=f"{tp[0]}:{tp[1]}")
        self.next_offset: int | None = None
        self.dirty = False  # consumed or changed since the last save
        self.changed = False  # transitions or notifications since the last save
        self.new_outbox: list[OutboxItem] = []
        self.saved_at = time.monotonic()

    def snapshot(self) -> dict[str, Any]:
        return {"engine": self.engine.dump(), "groups": self.grouper.dump()}


class AlertService:
    """Owns the partitions, silences and the dispatcher; all mutation happens under ``lock``."""

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
        self.topics = producer.settings.topics
        self.topic = self.topics.alerts
        self.kinds = {
            self.topics.prices: "price",
            self.topics.sentiment: "sentiment",
            self.topics.feed_status: "feed",
        }
        self.dlq = DeadLetterPublisher(producer, settings.service_name)
        self.partitions: dict[TopicPartition, Partition] = {}
        self.partition_counts: dict[str, int] = {}
        self.silences: dict[str, Silence] = {}
        self._active_silences: set[str] = set()
        self._silences_loaded = 0.0
        self._last_tick = 0.0
        self.lock = asyncio.Lock()
        self.last_save = 0.0
        self.store_ok = True
        self.dispatcher = Dispatcher(self, deliverer)
        self.stop: asyncio.Event | None = None  # set by the app: ends retries when stopping

    # ------------------------------------------------------------------------ partitions
    def _owns(self, tp: TopicPartition) -> Callable[[str], bool] | None:
        """Whether a symbol's price events arrive on partition ``tp`` (keyed by symbol)."""
        count = self.partition_counts.get(tp[0])
        if not count or count == 1:
            return None
        every = list(range(count))
        return lambda symbol: _partitioner(symbol.encode(), every, every) == tp[1]

    async def assign(self, tps: list[TopicPartition], now: float | None = None) -> Offsets:
        """Take over partitions: load their state and outbox; return where to resume."""
        now = time.time() if now is None else now
        seeks: Offsets = {}
        async with self.lock:
            for tp in tps:
                kind = self.kinds.get(tp[0])
                if kind is None or tp in self.partitions:
                    continue
                state: Acquired = await self._retry(
                    functools.partial(self.store.acquire, self.settings.group_id, *tp)
                )
                part = Partition(tp, kind, self.rules, state.epoch, self._owns(tp))
                if state.snapshot:
                    transitions = part.engine.load(state.snapshot.get("engine", {}), now)
                    part.grouper.load(state.snapshot.get("groups", []))
                    await self._after(part, transitions, now)
                if state.next_offset is not None:
                    part.next_offset = state.next_offset
                    seeks[tp] = state.next_offset
                self.partitions[tp] = part
                for item in state.outbox:
                    self.dispatcher.enqueue(item)
                log.info(
                    "partition assigned",
                    extra={
                        "topic": tp[0],
                        "partition": tp[1],
                        "alerts": len(part.engine.alerts),
                        "outbox": len(state.outbox),
                        "offset": state.next_offset,
                    },
                )
            if any(p.changed for p in self.partitions.values()):
                await self._retry(self.save)
        self._gauges()
        return seeks

    async def revoke(self, tps: list[TopicPartition]) -> Offsets:
        """Give partitions up: save their state, let their deliveries finish, drop them."""
        mine = [tp for tp in tps if tp in self.partitions]
        if not mine:
            return {}
        saved: Offsets = {}
        async with self.lock:
            try:
                saved = await self.save(only=mine)
            except FencedError:
                pass  # already taken over
            except Exception as exc:  # the next owner re-reads from the last saved state
                log.warning("state of revoked partitions not saved", extra={"error": repr(exc)})
            await self.dispatcher.release(set(mine))
            for tp in mine:
                del self.partitions[tp]
        self._gauges()
        log.info("partitions revoked", extra={"partitions": [f"{t}:{p}" for t, p in mine]})
        return saved

    async def _retry(self, call: Callable[[], Awaitable[Any]]) -> Any:
        backoff = Backoff(initial=self.settings.retry_initial_s, maximum=10.0)
        while True:
            try:
                return await call()
            except FencedError:
                raise
            except Exception as exc:
                delay = backoff.next_delay()
                log.warning(
                    "store unavailable; retrying", extra={"error": repr(exc), "retry_in_s": delay}
                )
                stop = self.stop or asyncio.Event()
                await sleep_unless_stopped(delay, stop)

    # ----------------------------------------------------------------------------- state
    async def save(self, only: list[TopicPartition] | None = None) -> Offsets:
        """Persist the changed partitions' state, offsets and new outbox rows together; then
        hand the rows to the dispatcher. Returns the offsets now covered by saved state."""
        parts = [
            p
            for tp, p in self.partitions.items()
            if (only is None or tp in only) and (p.dirty or p.changed or p.new_outbox)
        ]
        if not parts:
            return {}
        saves = [
            PartitionSave(
                p.tp[0], p.tp[1], p.epoch, p.snapshot(), p.next_offset, list(p.new_outbox)
            )
            for p in parts
        ]
        try:
            await self.store.save(self.settings.group_id, saves)
        except FencedError as exc:
            for tp in exc.partitions:  # another replica owns them now
                log.warning("partition taken over by another replica", extra={"partition": tp})
                self.partitions.pop(tp, None)
                await self.dispatcher.release({tp})
            raise
        except Exception:
            self.store_ok = False
            raise
        self.store_ok = True
        metrics.STATE_SAVES.inc()
        self.last_save = time.monotonic()
        offsets: Offsets = {}
        for p, s in zip(parts, saves, strict=True):
            p.dirty = p.changed = False
            p.saved_at = self.last_save
            del p.new_outbox[: len(s.new)]
            for item in s.new:
                self.dispatcher.enqueue(item)
            if p.next_offset is not None:
                offsets[p.tp] = p.next_offset
        return offsets

    # ---------------------------------------------------------------------------- intake
    async def handle_batch(
        self, batch: dict[TopicPartition, list[Any]], now: float | None = None
    ) -> Offsets:
        """Evaluate records (aiokafka ``ConsumerRecord``s by partition) and a tick; save the
        partitions that changed (or are due); return the offsets saved."""
        now = time.time() if now is None else now
        async with self.lock:
            await self._refresh_silences(now)
            dead: list[OutRecord] = []
            fast = slow = 0
            prices = self.topics.prices
            read, tick = read_price, tick_from_record  # locals: this loop runs per record
            for tp, fetched in batch.items():
                part = self.partitions.get(tp)
                if part is None or not fetched:
                    continue  # revoked meanwhile: its next owner reads these again
                records = fetched
                if part.next_offset is not None and fetched[0].offset < part.next_offset:
                    # fetched before a handover: the saved state already covers these
                    records = [r for r in fetched if r.offset >= part.next_offset]
                    if not records:
                        continue
                on_price = part.engine.on_price
                transitions: list[Transition] = []
                is_prices = tp[0] == prices
                for rec in records:
                    value = rec.value
                    record = read(value) if is_prices and value is not None else None
                    if record is None:
                        slow += 1
                        self._slow(part, rec, now, transitions, dead)
                        continue
                    fast += 1
                    try:
                        found = on_price(tick(record), now)
                    except EvaluationError as exc:
                        self._evaluation_failed(rec, exc, transitions, dead)
                    else:
                        if found:
                            transitions.extend(found)
                part.next_offset = records[-1].offset + 1
                part.dirty = True
                if transitions:
                    await self._after(part, transitions, now)
            if fast:
                metrics.EVENTS.labels("price").inc(fast)
            ended = self._silences_ended(now)
            ticking = now - self._last_tick >= self.settings.tick_interval_s
            if ticking:
                self._last_tick = now
            for part in self.partitions.values():
                if ended:
                    part.grouper.reconsider(now)
                await self._after(part, part.engine.tick(now) if ticking else [], now)
            await self.dlq.deliver(dead, stop=self.stop)
            self._gauges()
            # Save at once what has notifications to deliver; the rest (consumed offsets,
            # windows, transitions already published) at least every flush interval.
            oldest = time.monotonic() - self.settings.state_flush_interval_s
            ready = [
                tp
                for tp, p in self.partitions.items()
                if p.new_outbox or ((p.dirty or p.changed) and p.saved_at <= oldest)
            ]
            return await self.save(only=ready) if ready else {}

    def _slow(
        self,
        part: Partition,
        rec: Any,
        now: float,
        transitions: list[Transition],
        dead: list[OutRecord],
    ) -> None:
        """Decode with the models: any event type, or a price the fast reader deferred."""
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
            if isinstance(event, _EVENT_TYPES):
                metrics.EVENTS.labels(getattr(event, "type", "event")).inc()
                try:
                    transitions.extend(part.engine.process(event, now))
                except EvaluationError as exc:
                    self._evaluation_failed(rec, exc, transitions, dead)
        if reason is not None and error is not None:
            dead.append(self._letter(rec, reason, error))

    def _evaluation_failed(
        self, rec: Any, exc: EvaluationError, transitions: list[Transition], dead: list[OutRecord]
    ) -> None:
        metrics.EVALUATION_ERRORS.inc()
        transitions.extend(exc.transitions)
        dead.append(self._letter(rec, f"alert evaluation failed: {exc}", exc))

    def _letter(self, rec: Any, reason: str, error: Exception) -> OutRecord:
        return self.dlq.letter(
            rec.value,
            reason=reason,
            error=error,
            origin_topic=rec.topic,
            origin_partition=rec.partition,
            origin_offset=rec.offset,
            key=rec.key,
        )

    async def _after(self, part: Partition, transitions: list[Transition], now: float) -> None:
        """Publish transitions, feed the grouper, move due groups to the outbox."""
        futures = []
        silences = list(self.silences.values())
        for t in transitions:
            metrics.TRANSITIONS.labels(t.status).inc()
            futures.append(await self._publish(alert_event(t.alert, t.status, t.at)))
            part.grouper.add(t, now)
            if t.status == "firing" and silenced_by(silences, t.alert.labels, now):
                metrics.SILENCED.inc()
                futures.append(await self._publish(alert_event(t.alert, "silenced", now)))
        notes: list[Notification] = []
        next_due = part.grouper.next_due()
        if next_due is not None and next_due <= now:
            notes = part.grouper.due(
                now, lambda labels: silenced_by(silences, labels, now) is not None
            )
        for n in notes:
            metrics.NOTIFICATIONS_QUEUED.labels(n.receiver).inc()
            part.new_outbox.append(OutboxItem(n, part.tp[0], part.tp[1], part.epoch, 0, now))
        if futures:
            await asyncio.gather(*futures)
        if transitions or notes:
            part.changed = True

    async def _publish(self, event: AlertEvent) -> asyncio.Future[Any]:
        return await self.producer.send(self.topic, event.to_json(), key=event.key)

    def alerts(self) -> list[Alert]:
        return [a for p in self.partitions.values() for a in p.engine.alerts.values()]

    def _gauges(self) -> None:
        states = [a.status for a in self.alerts()]
        metrics.FIRING.set(states.count("firing"))
        metrics.PENDING.set(states.count("pending"))

    def next_wakeup(self) -> float | None:
        times = [t for p in self.partitions.values() if (t := p.grouper.next_due()) is not None]
        return min(times) if times else None

    # ------------------------------------------------------------------- rules, silences
    async def set_rules(self, rules: RulesFile) -> None:
        """Swap in validated rules (reload); alerts of removed/changed rules resolve."""
        self.dispatcher.deliverer.check(rules)
        async with self.lock:
            now = time.time()
            self.rules = rules
            for part in self.partitions.values():
                transitions = part.engine.set_rules(rules, now)
                part.grouper.rules = rules
                await self._after(part, transitions, now)
                part.changed = True
            await self.save()
        metrics.RULES.set(len(rules.active_rules))

    async def _refresh_silences(self, now: float) -> None:
        """Other replicas add and expire silences too: re-read them now and then."""
        if now - self._silences_loaded < self.settings.silences_refresh_s:
            return
        self._silences_loaded = now
        with contextlib.suppress(Exception):  # keep the known ones while the store is down
            self.silences = {s.id: s for s in await self.store.load_silences()}

    def _silences_ended(self, now: float) -> bool:
        active = {i for i, s in self.silences.items() if s.active(now)}
        ended = bool(self._active_silences - active)
        self._active_silences = active
        return ended

    async def load_silences(self) -> None:
        self.silences = {s.id: s for s in await self.store.load_silences()}
        self._silences_loaded = time.time()

    async def add_silence(self, silence: Silence) -> None:
        await self.store.put_silence(silence)
        self.silences[silence.id] = silence

    async def expire_silence(self, silence_id: str, now: float) -> Silence | None:
        silence = self.silences.get(silence_id)
        if silence is None:  # perhaps made through another replica a moment ago
            await self.load_silences()
            silence = self.silences.get(silence_id)
        if silence is None:
            return None
        ends = min(silence.ends_at, datetime.fromtimestamp(now, UTC))
        silence = silence.model_copy(update={"ends_at": ends})
        await self.store.put_silence(silence)
        self.silences[silence_id] = silence
        return silence

    async def notified(self, n: Notification, now: float) -> None:
        futures = [
            await self._publish(alert_event(a, "notified", now, [n.receiver]))
            for a in [*n.firing, *n.resolved]
        ]
        await asyncio.gather(*futures)
