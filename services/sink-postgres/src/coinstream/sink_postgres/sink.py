"""The consume -> batch -> write -> commit pipeline.

Two tasks overlap parsing and database time: the fetch loop polls Kafka, decodes records into
a ``Batch`` and hands full (or old enough) batches to a queue; the writer writes each batch in
one transaction, dead-letters rejected records, then commits the batch's offsets. Offsets are
committed only after the database commit, so a crash at any point replays, never skips, and
the natural keys absorb the replay.

Back-pressure is pausing: when ``max_pending_batches`` wait for the database (slow, down or
restarting) the fetch loop pauses every assigned partition but keeps polling, so the consumer
keeps its group membership. On partition revocation the pending work is flushed and committed
before the partitions are given up.

A database that stays down is retried with capped backoff for as long as it takes. On
SIGTERM during such an outage the writer gives up the batches it could not write (their
offsets are not committed, so the next start writes them) and the service still exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from coinstream.runtime import (
    Backoff,
    DeadLetterPublisher,
    KafkaConsumer,
    StoppedError,
    sleep_unless_stopped,
    utc_now,
)
from coinstream.sink_postgres import metrics
from coinstream.sink_postgres.batch import Batch, Rejected, TableBatch
from coinstream.sink_postgres.errors import DatabaseUnavailable
from coinstream.sink_postgres.settings import SinkPostgresSettings
from coinstream.sink_postgres.store import Store, WriteResult

log = logging.getLogger(__name__)

PartitionKey = tuple[str, int]
DECODE_SLICE = 250
"""Records decoded between two yields to the event loop."""
PAUSED_POLL_MS = 10
"""Poll timeout while paused: an empty poll costs nothing (no fetch for paused partitions) and
a short one resumes consumption as soon as the writer takes the next batch."""
BUSY_POLL_MS = 5
"""Poll timeout while a batch is open and the writer is busy (``flush_when_idle``): the open
batch goes to the writer within about this long after the writer becomes free."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._sink.on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._sink.on_assigned(list(assigned))


class Sink:
    """Runs the pipeline for one consumer. Create, ``attach(consumer)``, then ``run(stop)``."""

    def __init__(
        self, settings: SinkPostgresSettings, store: Store, dead_letters: DeadLetterPublisher
    ) -> None:
        self._settings = settings
        self._store = store
        self._dlq = dead_letters
        self._consumer: KafkaConsumer | None = None
        self._queue: asyncio.Queue[tuple[Batch, list[TableBatch]] | None] = asyncio.Queue()
        self._in_flight = 0  # batches handed to the writer and not yet written and committed
        self._caught_up = False  # the last poll drained what the consumer had fetched
        self._batch = Batch()
        self._paused: set[TopicPartition] = set()
        self._paused_by_outage = False
        self._consumed: dict[PartitionKey, int] = {}
        self._committed: dict[PartitionKey, int] = {}
        self.listener = _Rebalance(self)
        self._stop = asyncio.Event()  # set when the service stops: ends database retries
        self.db_error: str | None = None
        self.running = False
        self.totals: dict[str, int] = {
            "records": 0,
            "rows_written": 0,
            "rows_absorbed": 0,
            "dead_letters": 0,
            "db_retries": 0,
            "batches": 0,
        }

    def attach(self, consumer: KafkaConsumer) -> None:
        self._consumer = consumer

    @property
    def consumer(self) -> KafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("Sink.attach(consumer) must be called before run()")
        return self._consumer

    def counters(self) -> dict[str, int]:
        return dict(self.totals)

    def readiness(self) -> tuple[bool, str]:
        if self.db_error:
            return False, f"database unavailable, consumption paused: {self.db_error}"
        return self.running, "consuming" if self.running else "not started"

    # -- fetch loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then write and commit what was consumed (unless the
        database is down: then what could not be written is left for the next start)."""
        self._stop = stop
        writer = asyncio.create_task(self._write_loop(), name="sink-writer")
        self.running = True
        try:
            while not stop.is_set():
                if writer.done():
                    writer.result()  # the writer never ends on its own: surface its error
                    raise RuntimeError("sink writer stopped unexpectedly")
                self._apply_backpressure()
                room = self._settings.batch_max_rows - self._batch.records
                wanted = max(1, min(room, self._settings.poll_max_records))
                polled = await self.consumer.getmany(
                    timeout_ms=self._poll_timeout_ms(), max_records=wanted
                )
                got = 0
                for tp, records in polled.items():
                    got += len(records)
                    await self._take(tp, records)
                self._caught_up = got < wanted
                if self._batch_due():
                    self._enqueue()
            self._enqueue()
            await self._queue.put(None)
            await writer
        finally:
            self.running = False
            if not writer.done():
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)

    async def _take(self, tp: TopicPartition, records: list[Any]) -> None:
        """Decode into the batch in slices, yielding between them so the writer's database
        round trips are not held up by parsing (that overlap is where the speed comes from)."""
        key = (tp.topic, tp.partition)
        step = DECODE_SLICE
        for i in range(0, len(records), step):
            if i and tp not in self.consumer.raw.assignment():
                return  # revoked while we yielded: the next owner reads the rest
            part = records[i : i + step]
            self._batch.extend(part)
            metrics.RECORDS_CONSUMED.labels(tp.topic).inc(len(part))
            self.totals["records"] += len(part)
            self._committed.setdefault(key, part[0].offset)
            self._consumed[key] = part[-1].offset + 1
            self._update_lag(key)
            await asyncio.sleep(0)

    def _poll_timeout_ms(self) -> int:
        wait = self._settings.batch_max_wait_ms
        if self._batch.records:
            wait = max(1, int(wait - self._batch.age_s() * 1000))
            if self._settings.flush_when_idle:
                # The open batch goes as soon as the writer is free: look again soon.
                wait = min(wait, BUSY_POLL_MS)
        # While paused, poll briefly so consumption resumes soon after the writer catches up.
        return min(wait, PAUSED_POLL_MS if self._paused else 500)

    def _batch_due(self) -> bool:
        """Whether the open batch goes to the writer now: it is full, or old, or (the
        adaptive case) the writer is idle and the consumer has caught up. Under load the
        writer is never idle, so batches fill up to ``batch_max_rows`` while it works; at
        moderate rates each batch holds what arrived during the previous transaction."""
        b = self._batch
        if not b.records:
            return False
        return (
            b.records >= self._settings.batch_max_rows
            or b.age_s() * 1000 >= self._settings.batch_max_wait_ms
            or (self._settings.flush_when_idle and self._in_flight == 0 and self._caught_up)
        )

    def _enqueue(self) -> None:
        if self._batch.records:
            batch, self._batch = self._batch, Batch()
            # Reduce here, not in the writer: the writer's time should be database time only.
            self._in_flight += 1
            self._queue.put_nowait((batch, batch.reduced()))

    def _apply_backpressure(self) -> None:
        raw = self.consumer.raw
        backlog = self._queue.qsize() >= self._settings.max_pending_batches
        if backlog or (self.db_error is not None and self._queue.qsize() > 0):
            assigned = set(raw.assignment())
            newly = assigned - self._paused
            if newly:
                raw.pause(*newly)
                if not self._paused:
                    # Routine back-pressure under load is DEBUG; during an outage a WARNING.
                    self._paused_by_outage = self.db_error is not None
                    log.log(
                        logging.WARNING if self._paused_by_outage else logging.DEBUG,
                        "consumption paused",
                        extra={"pending": self._queue.qsize(), "db_error": self.db_error},
                    )
                self._paused |= newly
                metrics.PAUSED.set(1)
        elif self._paused:
            still = set(raw.assignment()) & self._paused
            if still:
                raw.resume(*still)
            self._paused.clear()
            metrics.PAUSED.set(0)
            log.log(
                logging.INFO if self._paused_by_outage else logging.DEBUG, "consumption resumed"
            )
            self._paused_by_outage = False

    # -- rebalancing ------------------------------------------------------------------------

    async def on_revoked(self, revoked: list[TopicPartition]) -> None:
        """Flush and commit everything consumed before the partitions go to another member."""
        if not revoked:
            return
        metrics.REBALANCES.labels("revoked").inc()
        self._enqueue()
        try:
            await asyncio.wait_for(self._queue.join(), self._settings.revoke_flush_timeout_s)
        except TimeoutError:
            log.warning(
                "revoked partitions not flushed in time; the next owner replays them",
                extra={"partitions": [f"{tp.topic}:{tp.partition}" for tp in revoked]},
            )
        for tp in revoked:
            self._paused.discard(tp)
            key = (tp.topic, tp.partition)
            if self._consumed.pop(key, None) is not None:
                try:
                    metrics.CONSUMER_LAG.remove(tp.topic, str(tp.partition))
                except KeyError:
                    pass
            self._committed.pop(key, None)

    def on_assigned(self, assigned: list[TopicPartition]) -> None:
        metrics.REBALANCES.labels("assigned").inc()
        log.info("partitions assigned", extra={"partitions": len(assigned)})

    # -- writer -----------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if item is None:
                    return
                await self._process(*item)
            except StoppedError:
                self._abandon()
                return
            finally:
                if item is not None:
                    self._in_flight -= 1
                self._queue.task_done()

    def _abandon(self) -> None:
        """Stopping while the database is down: drop what is queued, uncommitted."""
        dropped = 0
        while not self._queue.empty():
            item = self._queue.get_nowait()
            self._queue.task_done()
            if item is not None:
                self._in_flight -= 1
                dropped += item[0].records
        log.warning(
            "stopping with the database unavailable: unwritten records are not committed and "
            "will be written after the next start",
            extra={"error": self.db_error, "queued_records": dropped},
        )

    async def _process(self, batch: Batch, reduced: list[TableBatch]) -> None:
        result = await self._write_with_retry(reduced) if reduced else WriteResult()
        self._record_write(batch, result)
        rejected = list(batch.rejected)
        rejected += [Rejected(f.record, f.reason, f.error, f.table) for f in result.rejected]
        if rejected:
            await self._dead_letter(rejected)
        await self._commit(batch.offsets)
        metrics.BATCH_END_TO_END_SECONDS.observe(time.monotonic() - batch.started)
        now = utc_now()
        for event_type, newest in batch.newest.items():
            metrics.EVENT_LAG.labels(event_type).set((now - newest).total_seconds())

    async def _write_with_retry(self, reduced: list[TableBatch]) -> WriteResult:
        backoff = Backoff(
            initial=self._settings.retry_initial_s, maximum=self._settings.retry_max_s
        )
        while True:
            try:
                result = await self._store.write(reduced)
            except DatabaseUnavailable as exc:
                cause = exc.__cause__ or exc
                self.db_error = f"{type(cause).__name__}: {cause}"[:300]
                metrics.DB_UP.set(0)
                metrics.DB_RETRIES.labels(type(cause).__name__).inc()
                self.totals["db_retries"] += 1
                delay = backoff.next_delay()
                log.warning(
                    "database write failed; retrying",
                    extra={"error": self.db_error, "retry_in_s": round(delay, 3)},
                )
                await sleep_unless_stopped(delay, self._stop)
                continue
            if self.db_error is not None:
                log.info("database writes resumed")
            self.db_error = None
            metrics.DB_UP.set(1)
            return result

    def _record_write(self, batch: Batch, result: WriteResult) -> None:
        self.totals["batches"] += 1
        metrics.BATCH_ROWS.observe(batch.records)
        metrics.BATCH_SECONDS.observe(result.seconds)
        for table, staged in result.staged.items():
            changed = result.changed.get(table, 0)
            raw_rows = len(batch.tables[table].rows) if table in batch.tables else staged
            metrics.ROWS_WRITTEN.labels(table).inc(changed)
            metrics.ROWS_ABSORBED.labels(table).inc(max(0, raw_rows - changed))
            self.totals["rows_written"] += changed
            self.totals["rows_absorbed"] += max(0, raw_rows - changed)
            if result.seconds > 0:
                metrics.ROWS_PER_SECOND.labels(table).set(staged / result.seconds)

    async def _dead_letter(self, rejected: list[Rejected]) -> None:
        """Publish every rejected record and wait for the broker before offsets move on."""
        seen: set[tuple[str, int, int]] = set()
        unique = []
        for r in rejected:
            ident = (r.record.topic, r.record.partition, r.record.offset)
            if ident not in seen:
                seen.add(ident)
                unique.append(r)
        letters = [
            self._dlq.letter(
                r.record.value,
                reason=r.reason,
                error=r.error,
                origin_topic=r.record.topic,
                origin_partition=r.record.partition,
                origin_offset=r.record.offset,
                key=r.record.key,
            )
            for r in unique
        ]
        backoff = Backoff(
            initial=self._settings.retry_initial_s, maximum=self._settings.retry_max_s
        )
        await self._dlq.deliver(letters, stop=self._stop, backoff=backoff)
        for r in unique:
            label = "rejected_by_database" if r.table else "undecodable"
            metrics.DEAD_LETTERS.labels(label).inc()
        self.totals["dead_letters"] += len(unique)

    async def _commit(self, offsets: dict[PartitionKey, int]) -> None:
        assigned = {(tp.topic, tp.partition) for tp in self.consumer.raw.assignment()}
        owned = {TopicPartition(t, p): o for (t, p), o in offsets.items() if (t, p) in assigned}
        if not owned:
            return
        try:
            await self.consumer.commit(owned)
        except KafkaError as exc:  # e.g. a rebalance took the partition: the new owner replays
            metrics.COMMITS.labels("failed").inc()
            log.warning(
                "offset commit failed; records will be replayed", extra={"error": repr(exc)}
            )
            return
        metrics.COMMITS.labels("ok").inc()
        for tp, offset in owned.items():
            key = (tp.topic, tp.partition)
            self._committed[key] = max(offset, self._committed.get(key, 0))
            self._update_lag(key)

    def _update_lag(self, key: PartitionKey) -> None:
        lag = self._consumed.get(key, 0) - self._committed.get(key, 0)
        metrics.CONSUMER_LAG.labels(key[0], str(key[1])).set(max(0, lag))
