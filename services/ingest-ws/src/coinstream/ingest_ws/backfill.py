"""Filling gaps from each venue's REST trade history (the I/O edge; the venue plugins plan).

A detected gap (live, or found after a restart) becomes a ``Backfill`` job for its venue.
One worker per venue fetches the missing trades page by page (``VenueProtocol.history_*``)
within the venue's documented rate budget (``coinstream.runtime.ratelimit``): a 429 pauses
every request of the venue for ``Retry-After``; 5xx answers and timeouts are retried with
capped backoff (``backfill_retries`` times). Each response is published verbatim to the raw
topic with ``backfilled=true``, so the normalizer turns it into the very trade events the live
stream would have carried. The job ends with a feed-status event: ``gap_filled``, or
``gap_unrecoverable`` naming the ids no history could supply and why (the venue keeps no
history that far back, the per-gap limit was reached, the venue kept failing).

While a job runs its range is an open hole in the checkpoints, so a restart resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import JsonValue

from coinstream.ingest_ws import metrics
from coinstream.ingest_ws.checkpoints import CheckpointBook, Marks
from coinstream.ingest_ws.publisher import Sink
from coinstream.ingest_ws.venues import VenueProtocol, VenueSettings
from coinstream.ingest_ws.venues.base import Backfill, HistoryPage, HistoryRequest
from coinstream.runtime import Backoff
from coinstream.runtime.ratelimit import RateBudget, parse_retry_after
from coinstream.schemas import RawEnvelope, RequestMeta

log = logging.getLogger(__name__)

Status = Callable[..., None]
"""``Venue.status``: publishes a feed-status event."""


class _Unrecoverable(Exception):
    """The history cannot supply the rest of the gap (the message says why)."""


def missing_ranges(wanted: range, have: set[int]) -> list[tuple[int, int]]:
    """The runs of ``wanted`` not in ``have``: ``[(first, last), ...]`` (pure)."""
    out: list[tuple[int, int]] = []
    start: int | None = None
    for i in wanted:
        if i in have:
            if start is not None:
                out.append((start, i - 1))
                start = None
        elif start is None:
            start = i
    if start is not None:
        out.append((start, wanted[-1]))
    return out


class Backfiller:
    """One venue's backfill worker: ``submit()`` jobs, ``async with`` to run them."""

    def __init__(
        self,
        protocol: VenueProtocol,
        sink: Sink,
        status: Status,
        book: CheckpointBook | None = None,
    ) -> None:
        self.protocol = protocol
        self.venue = protocol.name
        self.settings: VenueSettings = protocol.settings
        self.sink = sink
        self.status = status
        self.book = book
        s = self.settings
        self.budget = RateBudget.per_minute(s.backfill_calls, s.backfill_window_s)
        self.queue: asyncio.Queue[Backfill] = asyncio.Queue()
        self.queued: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self.filled = 0
        self.unrecoverable = 0

    @property
    def enabled(self) -> bool:
        return self.settings.backfill and bool(self.settings.rest_url)

    def submit(self, job: Backfill) -> bool:
        """Queue ``job`` if the venue has history for it; False otherwise."""
        if not self.enabled or self.protocol.history_request(job) is None:
            return False
        if job.gap_id in self.queued:
            return True
        self.queued.add(job.gap_id)
        if self.book is not None:
            self.book.open_hole(self.venue, job.key, job.first, job.last, job.start, job.end)
        self.queue.put_nowait(job)
        return True

    async def __aenter__(self) -> Backfiller:
        if self.enabled:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=15),
                headers={"User-Agent": "coinstream-ingest-ws/0.1", "Accept": "application/json"},
            )
            self._task = asyncio.create_task(self._run(), name=f"{self.venue}-backfill")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop; jobs not finished stay open holes in the checkpoints for the next start."""
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()

    async def _run(self) -> None:
        while True:
            job = await self.queue.get()
            try:
                await self._fill(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # one job must not end the worker
                log.exception("backfill failed", extra={"venue": self.venue, "gap": job.gap_id})
            finally:
                self.queued.discard(job.gap_id)

    async def _fill(self, job: Backfill) -> None:
        started = time.monotonic()
        wanted = range(job.first, job.last + 1)
        have: set[int] = set()
        request = self.protocol.history_request(job)
        fetched = requests = 0
        oldest: int | None = None
        reason = ""
        try:
            while request is not None:
                if time.monotonic() - started > self.settings.backfill_timeout_s:
                    raise _Unrecoverable(
                        f"gave up after {self.settings.backfill_timeout_s:g} s "
                        "(INGEST_WS_<VENUE>__BACKFILL_TIMEOUT_S)"
                    )
                page, body, meta = await self._get(job, request)
                requests += 1
                if page.error is not None:
                    raise _Unrecoverable(page.error)
                fetched += len(page.ids)
                if page.ids:
                    low = min(page.ids)
                    oldest = low if oldest is None else min(oldest, low)
                self._publish(job, request, body, meta, page)
                have.update(i for i in page.ids if job.first <= i <= job.last)
                if fetched >= self.settings.backfill_max_trades and page.next is not None:
                    raise _Unrecoverable(
                        f"limit of {self.settings.backfill_max_trades} trades per gap reached "
                        "(INGEST_WS_<VENUE>__BACKFILL_MAX_TRADES)"
                    )
                request = page.next
        except _Unrecoverable as exc:
            reason = str(exc)
        missing = missing_ranges(wanted, have)
        if missing and not reason:
            reason = (
                f"the venue's history no longer holds ids before {oldest}"
                if oldest is not None and oldest > job.first
                else "the venue's history does not hold these ids"
            )
        self._finish(job, have, missing, reason, requests, time.monotonic() - started)

    async def _get(
        self, job: Backfill, request: HistoryRequest
    ) -> tuple[HistoryPage, str, RequestMeta]:
        """One page within the budget: 429 waits, transient failures retried with backoff."""
        assert self._http is not None
        url = self.settings.rest_url.rstrip("/") + request.path
        backoff = Backoff(initial=0.5, maximum=15.0)
        failures = 0
        while True:
            wait = self.budget.reserve(time.monotonic())
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            sent = time.monotonic()
            try:
                async with self._http.get(url, params=request.params) as resp:
                    status, body = resp.status, await resp.text()
                    headers = dict(resp.headers)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, body, headers = 0, f"{type(exc).__name__}: {exc}", {}
            latency_ms = (time.monotonic() - sent) * 1000
            if status == 429 or (status == 200 and "Rate limit" in body[:200]):
                metrics.BACKFILL_REQUESTS.labels(self.venue, "rate_limited").inc()
                pause = parse_retry_after(headers) or self.settings.default_retry_after_s
                self.budget.pause_until(time.monotonic() + pause)
                self.status(
                    "rate_limited",
                    cause=f"trade history rate limited; waiting {pause:g} s",
                    details={"retry_after_s": pause, "url": url},
                )
                continue
            if status == 200:
                metrics.BACKFILL_REQUESTS.labels(self.venue, "ok").inc()
                page = self.protocol.history_page(job, request, body)
                meta = RequestMeta(
                    url=url,
                    params=dict[str, JsonValue](request.params),
                    status=status,
                    latency_ms=latency_ms,
                    attempt=failures + 1,
                )
                return page, body, meta
            metrics.BACKFILL_REQUESTS.labels(self.venue, "failed").inc()
            failures += 1
            if (status and 400 <= status < 500) or failures > self.settings.backfill_retries:
                raise _Unrecoverable(f"the venue answered {status or body[:120]} ({failures}x)")
            await asyncio.sleep(backoff.next_delay())

    def _publish(
        self,
        job: Backfill,
        request: HistoryRequest,
        body: str,
        meta: RequestMeta,
        page: HistoryPage,
    ) -> None:
        key = f"{self.venue}:{job.symbol}".encode()
        value = RawEnvelope(
            envelope_id=uuid.uuid4().hex,
            source=self.venue,
            channel=request.channel,
            received_at=datetime.now(UTC),
            payload=body,
            request=meta,
            backfilled=True,
        ).to_json()
        marks: Marks | None = None
        if page.ids:
            top = max(page.ids)
            marks = {job.key: (top, page.times[page.ids.index(top)] if page.times else 0.0, key)}
        self.sink.offer_many(self.venue, [(key, value)], marks)
        in_gap = sum(1 for i in page.ids if job.first <= i <= job.last)
        metrics.BACKFILLED_TRADES.labels(self.venue).inc(in_gap)

    def _finish(
        self,
        job: Backfill,
        have: set[int],
        missing: list[tuple[int, int]],
        reason: str,
        requests: int,
        seconds: float,
    ) -> None:
        details: dict[str, Any] = {
            "gap_id": job.gap_id,
            "sequence": "trade_id",
            "first_missing": job.first,
            "last_missing": job.last,
            "recovered": len(have),
            "requests": requests,
            "seconds": round(seconds, 3),
        }
        channel, _, symbol = job.key.partition(":")
        window = {
            "start": datetime.fromtimestamp(job.start, UTC) if job.start is not None else None,
            "end": datetime.fromtimestamp(job.end, UTC),
        }
        if not missing:
            self.filled += 1
            metrics.GAPS_FILLED.labels(self.venue).inc()
            self.status(
                "gap_filled",
                symbol=symbol,
                channel=channel,
                cause=f"{len(have)} missing trade(s) backfilled from the REST history",
                details=details,
                **window,
            )
        else:
            lost = sum(b - a + 1 for a, b in missing)
            self.unrecoverable += 1
            metrics.GAPS_UNRECOVERABLE.labels(self.venue).inc()
            metrics.UNRECOVERABLE_TRADES.labels(self.venue).inc(lost)
            self.status(
                "gap_unrecoverable",
                symbol=symbol,
                channel=channel,
                cause=f"{lost} trade(s) not recoverable: {reason}",
                details={
                    **details,
                    "unrecovered": lost,
                    "ranges": [list(r) for r in missing[:50]],
                    "reason": reason,
                },
                **window,
            )
        if self.book is not None:
            self.book.close_hole(self.venue, job.key, job.first, job.last)
        log.info(
            "backfill done",
            extra={"venue": self.venue, "gap": job.gap_id, "recovered": len(have),
                   "missing": len(missing), "reason": reason},
        )  # fmt: skip
