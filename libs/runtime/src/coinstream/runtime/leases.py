"""Work leases: share a fixed set of jobs between the replicas of a service the way Kafka
shares partitions, through a consumer group.

Every replica joins consumer group ``group_id`` on a coordination topic that holds no records
(``Topics.work(service)``); its partitions are the unit of work. The group coordinator gives
each partition to exactly one member, so a job whose key hashes to partition
``partition_for(key, total)`` (CRC-32, stable across processes, unlike ``hash()``) belongs to
exactly one replica at a time. Members keep polling the empty topic so heartbeats and the
max-poll interval stay satisfied.

Ownership follows the rebalance callbacks: revoked partitions are dropped (and the
``on_revoked`` hook awaited, so work in flight can end) before the group moves on, so the next
owner starts after the previous one let go. Until the first assignment a member owns nothing
(``readiness()`` says so). If the broker cannot be reached, at start or later, the member owns
nothing and reconnects with the runtime's capped, jittered ``Backoff``, for as long as it
takes; ``readiness()`` reports the last error. A member that is alone owns every partition.

``async with WorkLeases(...)`` starts it; ``aclose()`` (idempotent) leaves the group, so the
other members take over at once; a closed member cannot be reopened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Self

from aiokafka import ConsumerRebalanceListener
from aiokafka.structs import TopicPartition

from coinstream.runtime.backoff import Backoff
from coinstream.runtime.errors import ResourceClosedError
from coinstream.runtime.failures import describe
from coinstream.runtime.kafka import KafkaConsumer
from coinstream.runtime.settings import KafkaSettings

log = logging.getLogger(__name__)

Listener = Callable[[], None]
RevokedHook = Callable[[frozenset[int]], Awaitable[None]]


def partition_for(key: str, partitions: int) -> int:
    """The work partition of ``key``: CRC-32 of its UTF-8 bytes modulo ``partitions``.

    Stable across processes and Python versions, so every replica maps a key alike.
    """
    if partitions <= 0:
        raise ValueError("partitions must be positive")
    return zlib.crc32(key.encode()) % partitions


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, leases: WorkLeases) -> None:
        self._leases = leases
        self.consumer: KafkaConsumer | None = None

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._leases._revoke({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        known = None
        if self.consumer is not None:
            known = self.consumer.raw.partitions_for_topic(self._leases.topic)
        self._leases._assign({tp.partition for tp in assigned}, len(known) if known else 0)


class WorkLeases:
    """One member of a work group. ``owns(key)`` says whether this replica should do a job."""

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        group_id: str,
        *,
        on_revoked: RevokedHook | None = None,
        backoff: Backoff | None = None,
        poll_timeout_ms: int = 500,
    ) -> None:
        self.topic = topic
        self.group_id = group_id
        self._settings = settings
        self._on_revoked = on_revoked
        self._backoff = backoff or Backoff(initial=0.5, maximum=30.0)
        self._poll_timeout_ms = poll_timeout_ms
        self._owned: frozenset[int] = frozenset()
        self._total = 0
        self.assigned = False
        self.assignments = 0
        self.last_error: str | None = None
        self._listeners: list[Listener] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._state = "new"

    # -- ownership ------------------------------------------------------------------------

    # ``assignments`` counts the assignments received (a rebalance ends with one; a revoke
    # alone does not change it), for users that react only to settled ownership.

    @property
    def owned(self) -> frozenset[int]:
        """The partitions this member owns now (empty until assigned)."""
        return self._owned

    @property
    def total(self) -> int:
        """The work topic's partition count (0 until known)."""
        return self._total

    @property
    def share(self) -> float:
        """Owned partitions / total partitions (0.0 until assigned)."""
        return len(self._owned) / self._total if self._total else 0.0

    def owns(self, key: str) -> bool:
        """True when the job ``key`` is this member's now."""
        return self._total > 0 and partition_for(key, self._total) in self._owned

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener()`` (synchronously) after every change of ownership."""
        self._listeners.append(listener)

    async def wait_changed(self) -> None:
        """Return at the next change of ownership."""
        await self._changed.wait()

    def readiness(self) -> tuple[bool, str]:
        """Not ready until the first assignment; then the partitions owned."""
        if not self.assigned:
            reason = f" (last error: {self.last_error})" if self.last_error else ""
            return False, f"waiting for a share of {self.topic} in group {self.group_id}{reason}"
        return True, f"owns {len(self._owned)} of {self._total} work partitions"

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        for listener in self._listeners:
            try:
                listener()
            except Exception:  # a listener's bug must not break the group membership
                log.exception("work-lease listener failed", extra={"topic": self.topic})

    async def _revoke(self, partitions: set[int]) -> None:
        if not partitions & self._owned:
            return
        lost = frozenset(partitions & self._owned)
        self._owned = self._owned - lost
        self._notify()
        if self._on_revoked is not None:
            try:
                await self._on_revoked(lost)
            except Exception:
                log.exception("on_revoked hook failed", extra={"topic": self.topic})

    def _assign(self, partitions: set[int], total: int) -> None:
        self._total = total or max(partitions, default=-1) + 1
        self._owned = frozenset(partitions)
        first = not self.assigned
        self.assigned = True
        self.assignments += 1
        self.last_error = None
        log.info(
            "work partitions assigned",
            extra={
                "topic": self.topic,
                "group": self.group_id,
                "owned": sorted(self._owned),
                "total": self._total,
                "first": first,
            },
        )
        self._notify()

    def _drop_all(self) -> None:
        if self._owned:
            self._owned = frozenset()
            self._notify()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the membership in the background (idempotent); it does not wait to be
        assigned (see ``wait_assigned``)."""
        if self._state == "closed":
            raise ResourceClosedError("WorkLeases is closed; create a new one")
        if self._state == "new":
            self._state = "open"
            self._task = asyncio.create_task(self._run(), name=f"leases:{self.topic}")

    async def wait_assigned(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the first assignment; True once assigned."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not self.assigned:
                    await self.wait_changed()
        return self.assigned

    async def aclose(self) -> None:
        """Leave the group and stop; safe to call more than once."""
        self._state = "closed"
        self._drop_all()  # let go before leaving, so no other member overlaps with this one
        self.assigned = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(self) -> None:
        while True:
            listener = _Rebalance(self)
            consumer = KafkaConsumer(self._settings, [self.topic], self.group_id, listener)
            listener.consumer = consumer
            try:
                await consumer.start()
                while True:
                    await consumer.getmany(timeout_ms=self._poll_timeout_ms)
                    if self.assigned:
                        self._backoff.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker or the group: own nothing, then rejoin
                self.last_error = describe(exc)
                self._drop_all()
                self.assigned = False
                log.warning(
                    "work-lease membership failed; rejoining with backoff",
                    extra={"topic": self.topic, "group": self.group_id, "error": self.last_error},
                )
            finally:
                with contextlib.suppress(Exception):
                    await consumer.aclose()
            await asyncio.sleep(self._backoff.next_delay())
