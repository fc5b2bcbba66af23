"""The faust-streaming engine (``NORMALIZER_ENGINE=faust``): one agent runs the same core.

The agent reads every raw topic with acks disabled and acks a record only when (1) every
record produced for it is acknowledged by the broker (or dead-lettered) and (2) it no longer
feeds open state (``Normalizer.floor``). faust commits the highest contiguous acked offset, so
commits never pass the oldest record a restart needs to rebuild open candles and
consolidation windows. No faust tables are used: their changelog recovery is unreliable on the
local broker, and state is rebuilt by re-reading instead. Unlike the default engine, this one
re-publishes the outputs of the re-read records after a restart (faust has no place for a
second, emitted position); downstream absorbs them by event id.

An output larger than ``KAFKA_MAX_RECORD_BYTES``, or one the broker refuses for itself, is
dead-lettered with its raw record as origin; transient produce failures are sent again.

Settings applied (measured to help faust's per-message path): ``producer_linger`` 10 ms and
the ``faust``/``mode`` loggers at ``info`` (at ``warn`` the worker turns the root logger to
DEBUG). The app runs inside the service's event loop with its web server disabled (the
``--without-web`` equivalent), ``topic_replication_factor=1`` and at-least-once processing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from coinstream.normalizer import metrics
from coinstream.normalizer.core import Normalizer
from coinstream.normalizer.settings import NormalizerSettings
from coinstream.runtime import Backoff, OutRecord, RecordTooLargeError, describe, is_transient
from coinstream.runtime.batching import record_size
from coinstream.runtime.deadletters import dead_letter_record

log = logging.getLogger(__name__)

TP = tuple[str, int]
FLUSH_EVERY = 500


def _broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip())


class FaustEngine:
    def __init__(
        self, core: Normalizer, settings: NormalizerSettings, raw_topics: list[str]
    ) -> None:
        self.core = core
        self.settings = settings
        self.raw_topics = raw_topics
        self.started = False
        self.generation = 0
        self._held: dict[TP, deque[Any]] = {}
        # (future, record, origin message) of every record produced and not yet acknowledged
        self._pending: list[tuple[asyncio.Future[Any], OutRecord, Any]] = []
        self._max_record = settings.kafka.max_record_bytes
        self._since_flush = 0
        self._unacked_records = 0
        self.delivered = 0  # records whose outputs the broker acknowledged
        self._stream: Any = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.app: Any = None

    def ready(self) -> tuple[bool, str]:
        return (True, "faust agent running") if self.started else (False, "faust app not started")

    def _build_app(self) -> Any:
        import faust

        kafka = self.settings.kafka
        fs = self.settings.faust
        for name in ("faust", "mode"):
            logging.getLogger(name).setLevel(fs.log_level.upper())
        app = faust.App(
            self.settings.group_id,
            broker=_broker_url(kafka.bootstrap_servers),
            broker_client_id=kafka.client_id or "coinstream-normalizer",
            broker_session_timeout=kafka.session_timeout_ms / 1000,
            broker_heartbeat_interval=kafka.heartbeat_interval_ms / 1000,
            broker_request_timeout=kafka.request_timeout_ms / 1000,
            broker_commit_interval=fs.broker_commit_interval_s,
            consumer_auto_offset_reset="earliest",
            producer_linger=fs.producer_linger_s,
            producer_acks=-1,
            producer_compression_type=kafka.compression_type,
            processing_guarantee="at_least_once",
            topic_replication_factor=kafka.replication_factor,
            topic_allow_declare=False,
            topic_disable_leader=True,
            web_enabled=False,
            stream_wait_empty=False,  # held (unacked) records are re-read after a restart
            store="memory://",
            datadir=str(fs.data_dir),
            value_serializer="raw",
            key_serializer="raw",
        )
        topic = app.topic(*self.raw_topics, key_type=bytes, value_type=bytes)

        async def normalize(stream: Any) -> None:
            async for event in stream.noack().events():
                await self._handle(stream, event)

        app.agent(topic, name="normalize")(normalize)

        async def on_assigned(*args: Any, **kwargs: Any) -> None:
            # faust seeks every assigned partition to its committed offset: rebuild from there.
            self.generation += 1
            self.core.reset()
            self._held.clear()
            self._pending.clear()

        app.on_partitions_assigned.connect(on_assigned)
        return app

    async def _send(
        self,
        record: OutRecord,
        origin: Any,
        into: list[tuple[asyncio.Future[Any], OutRecord, Any]] | None = None,
    ) -> None:
        headers = list(record[3]) if len(record) == 4 else None  # type: ignore[misc]
        fut = await self.app.producer.send(record[0], record[1], record[2], None, None, headers)
        (self._pending if into is None else into).append((fut, record, origin))

    def _letter(self, msg: Any, reason: str, error: BaseException | str) -> OutRecord:
        return dead_letter_record(
            self.settings.kafka,
            "normalizer",
            msg.value,
            reason=reason,
            error=error,
            origin_topic=msg.topic,
            origin_partition=msg.partition,
            origin_offset=msg.offset,
            key=msg.key,
        )

    async def _handle(self, stream: Any, event: Any) -> None:
        msg = event.message
        outputs, letter = self.core.process(
            msg.topic, msg.partition, msg.offset, msg.key, msg.value
        )
        refused: BaseException | None = None
        for o in outputs:
            size = record_size(o)
            if size > self._max_record:
                refused = RecordTooLargeError(size, self._max_record)
                continue
            await self._send(o, msg)
        if refused is not None:
            reason = f"an event made from this record could not be produced: {describe(refused)}"
            await self._send(self._letter(msg, reason, refused), None)
        if letter is not None:
            await self._send(self._letter(msg, letter.reason, letter.error_class), None)
        tp = (msg.topic, msg.partition)
        held = self._held.get(tp)
        if held is None:
            held = self._held[tp] = deque()
        held.append((event, msg.offset))
        self._since_flush += 1
        self._unacked_records += 1
        self._stream = stream
        if self._since_flush >= FLUSH_EVERY and not self._lock.locked():
            # flush in the background: the agent keeps processing while acks arrive
            self._since_flush = 0
            task = asyncio.create_task(self.flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Wait for produced records' acks, then ack every record no longer feeding state.

        Serialized by a lock, so records are acked in the order their outputs were sent.
        """
        async with self._lock:
            await self._flush()

    async def _flush(self) -> None:
        stream = self._stream
        if stream is None:
            return
        generation = self.generation
        pending, self._pending = self._pending, []
        records, self._unacked_records = self._unacked_records, 0
        # only records whose outputs are in ``pending`` may be acked by this flush
        limits = {tp: held[-1][1] for tp, held in self._held.items() if held}
        self._since_flush = 0
        await self._settle(pending)
        if generation != self.generation:
            return
        self.delivered += records
        for tp, limit in limits.items():
            held = self._held.get(tp)
            floor = self.core.floor(tp)
            while held and held[0][1] <= limit and (floor is None or held[0][1] < floor):
                event, _ = held.popleft()
                await stream.ack(event)
        metrics.record(self.core.stats)

    async def _settle(self, pending: list[tuple[asyncio.Future[Any], OutRecord, Any]]) -> None:
        """Wait for every ack; send again what failed transiently (with backoff) and
        dead-letter the raw record of an output the broker refused for itself."""
        backoff = Backoff(initial=0.2, maximum=10.0)
        while pending:
            results = await asyncio.gather(*(f for f, _, _ in pending), return_exceptions=True)
            retry: list[tuple[OutRecord, Any]] = []
            for (_, record, origin), result in zip(pending, results, strict=True):
                if not isinstance(result, BaseException):
                    continue
                if is_transient(result) or origin is None:  # a dead letter is always retried
                    retry.append((record, origin))
                else:
                    reason = (
                        f"an event made from this record could not be produced to "
                        f"{record[0]}: {describe(result)}"
                    )
                    retry.append((self._letter(origin, reason, result), None))
            pending = []
            if retry:
                await asyncio.sleep(backoff.next_delay())
                for record, origin in retry:
                    await self._send(record, origin, into=pending)

    async def run(self, stop: asyncio.Event) -> None:
        self.app = self._build_app()
        await self.app.start()
        self.started = True
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), self.settings.poll_timeout_ms / 1000)
                except TimeoutError:
                    pass
                await self.flush()
        finally:
            self.started = False
            try:
                await self.flush()
                await self.app.consumer.commit()
            except Exception as exc:  # still stop the app; uncommitted records are re-read
                log.warning("final flush/commit failed", extra={"error": repr(exc)})
            await self.app.stop()
