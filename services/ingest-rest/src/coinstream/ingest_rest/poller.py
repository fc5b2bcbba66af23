"""One source at work: its endpoints polled concurrently through a shared rate budget and
circuit breaker, each response classified, published, dead-lettered or retried.

``SourceRunner.run()`` starts one task per enabled endpoint; each polls at start-up and then
every interval. A 429 pauses the whole provider; credentials refused stop the whole source
(reported once); timeouts and 5xx are retried with capped, jittered exponential backoff and
count towards the circuit breaker.

With ``WorkLeases`` the replicas of the service share the jobs: each (source, endpoint) has
the work key ``source/endpoint`` and a replica polls only the jobs it owns (checked before
each poll and each request). The source's budget is scaled to the owned jobs' share of its
enabled jobs (``RateBudget.rescale``); a share that grows is usable after one rate window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from coinstream.ingest_rest import metrics
from coinstream.ingest_rest.circuit import CircuitBreaker
from coinstream.ingest_rest.classify import NOT_JSON, classify, decode
from coinstream.ingest_rest.client import Fetched, HttpFetcher
from coinstream.ingest_rest.errors import (
    InvalidResponseError,
    SourceStoppedError,
    TransientSourceError,
    WorkMovedError,
)
from coinstream.ingest_rest.publisher import Publisher, build_envelope, request_url
from coinstream.ingest_rest.redaction import public_params, redact
from coinstream.ingest_rest.source import Endpoint, Outcome, Request, RestSource, SourceSettings
from coinstream.runtime import Backoff, WorkLeases
from coinstream.runtime.ratelimit import RateBudget

log = logging.getLogger(__name__)

MAX_SLEEP_S = 5.0
"""Waits longer than this are taken in steps, so a stopped source is noticed."""


@dataclass
class Counters:
    """Totals since start, reported in ``ServiceHealthEvent.counters``."""

    values: dict[str, int] = field(default_factory=dict)

    def inc(self, name: str, by: int = 1) -> None:
        self.values[name] = self.values.get(name, 0) + by

    def snapshot(self) -> dict[str, int]:
        return dict(self.values)


def endpoint_interval(endpoint: Endpoint, settings: SourceSettings) -> float:
    """Source-wide override, then the endpoint's setting, then the plugin default."""
    if settings.interval_s is not None:
        return settings.interval_s
    return settings.endpoint(endpoint.key).interval_s or endpoint.default_interval_s


def job_key(source: str, endpoint: Endpoint) -> str:
    """The work key of one job, ``source/endpoint`` (e.g. ``coingecko/simple_price``)."""
    return f"{source}/{endpoint.key}"


class SourceRunner:
    """Polls every enabled endpoint of one source. ``async with`` closes its HTTP pool."""

    def __init__(
        self,
        source: RestSource,
        settings: SourceSettings,
        publisher: Publisher,
        counters: Counters | None = None,
        leases: WorkLeases | None = None,
    ) -> None:
        self.source = source
        self.settings = settings
        self.name = source.name
        self._publisher = publisher
        self.counters = counters or Counters()
        self.budget = RateBudget.per_minute(
            settings.calls_per_minute,
            settings.rate_window_s,
            settings.credits_per_day,
            settings.credit_window_s,
        )
        self.circuit = CircuitBreaker(settings.circuit_failure_threshold, settings.circuit_open_s)
        self.stopped_reason: str | None = None
        self.last_success: float | None = None
        self._rate_limited = False
        self._base_url = source.base_url(settings)
        self._headers = source.auth_headers(settings)
        self._http: HttpFetcher | None = None
        self._closing = asyncio.Event()
        self._leases = leases
        self._assignments_seen = 0
        self._polling: set[str] = set()
        self._poll_ended = asyncio.Event()
        metrics.SOURCE_STOPPED.labels(self.name).set(0)
        metrics.CIRCUIT_OPEN.labels(self.name).set(0)
        metrics.RATE_LIMITED_UNTIL.labels(self.name).set(0)
        if leases is not None:
            leases.add_listener(self.rescale)
        self.rescale()

    # -- work sharing ---------------------------------------------------------------------

    def owns(self, endpoint: Endpoint) -> bool:
        """True when this replica polls ``endpoint`` now (always, without work leases)."""
        return self._leases is None or self._leases.owns(job_key(self.name, endpoint))

    def owned_endpoints(self) -> list[Endpoint]:
        return [e for e in self.enabled_endpoints() if self.owns(e)]

    def rescale(self) -> None:
        """Give the budget the owned jobs' share of the source's enabled jobs.

        Called on every change of ownership; the budget follows assignments only (a rebalance
        revokes everything first, and the jobs this replica keeps were spent by no one else).
        A lower share applies at once; growth is held back for one rate window, since the
        jobs' previous owner may have spent that part already. One exception: a process whose
        first assignment gives it every partition (it is alone in the group) takes the whole
        budget at once, exactly as a single replica did before work was shared.
        """
        total = len(self.enabled_endpoints())
        owned = len(self.owned_endpoints())
        metrics.OWNED_JOBS.labels(self.name).set(owned)
        leases = self._leases
        if leases is not None and leases.assignments != self._assignments_seen:
            alone_at_start = not self._assignments_seen and leases.share >= 1.0
            hold = 0.0 if alone_at_start else self.settings.rate_window_s
            self._assignments_seen = leases.assignments
            self.budget.rescale(asyncio.get_running_loop().time(), owned, total, hold)
        elif leases is not None and not leases.assignments:
            self.budget.rescale(asyncio.get_running_loop().time(), 0, total)  # owns nothing yet
        for window, limit in self.budget.limits().items():
            metrics.BUDGET_LIMIT.labels(self.name, window).set(limit)

    async def _ownership_changed(self) -> None:
        """Wait for a change of ownership; raise ``SourceStoppedError`` when closing."""
        if self._leases is None:
            raise RuntimeError("no work leases")
        waits = [
            asyncio.create_task(self._leases.wait_changed()),
            asyncio.create_task(self._closing.wait()),
        ]
        try:
            await asyncio.wait(waits, timeout=MAX_SLEEP_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        if self._closing.is_set():
            raise SourceStoppedError("the runner is closing")

    async def moved_polls_done(self) -> None:
        """Return once no poll of a job this replica no longer owns is running."""
        leases = self._leases
        while leases is not None and any(not leases.owns(key) for key in self._polling):
            await self._poll_ended.wait()

    def _ended_poll(self, key: str) -> None:
        self._polling.discard(key)
        ended, self._poll_ended = self._poll_ended, asyncio.Event()
        ended.set()

    # -- lifecycle ------------------------------------------------------------------------

    def enabled_endpoints(self) -> list[Endpoint]:
        return [e for e in self.source.endpoints() if self.settings.endpoint(e.key).enabled]

    async def run(self) -> None:
        """Poll every enabled endpoint concurrently until cancelled or the source stops.

        The HTTP connection pool lives as long as this call.
        """
        async with HttpFetcher(self.settings.timeout_s) as http:
            self._http = http
            tasks = [
                asyncio.create_task(self._endpoint_loop(e), name=f"{self.name}{e.channel}")
                for e in self.enabled_endpoints()
            ]
            try:
                await asyncio.gather(*tasks)
            finally:
                # The flag ends the loops even if a cancellation is lost inside a library
                # (Python 3.11's wait_for can swallow one that races a completion).
                self._closing.set()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._http = None
                self._closing.clear()

    async def aclose(self) -> None:
        """Nothing to release outside ``run()``; kept for the ``async with`` contract."""

    async def __aenter__(self) -> SourceRunner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def readiness(self) -> tuple[bool, str]:
        """Healthy when not stopped, circuit not open, and at least one response succeeded
        (or when this replica owns none of the source's jobs)."""
        if self.stopped_reason is not None:
            return False, f"stopped: {self.stopped_reason}"
        if self.circuit.state == "open":
            return False, "circuit open: the provider keeps failing"
        if self._leases is not None and not self.owned_endpoints():
            return True, "ok (no jobs of this source owned here)"
        if self.last_success is None:
            return False, "no successful response yet"
        loop_now = asyncio.get_running_loop().time()
        if self.budget.paused(loop_now):
            return True, f"ok (rate-limited for {self.budget.paused_until - loop_now:.0f} s)"
        return True, "ok"

    # -- polling ------------------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but end early (raising ``SourceStoppedError``) when ``run()`` is ending."""
        if seconds > 0 and not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._closing.wait()
        if self._closing.is_set():
            raise SourceStoppedError("the runner is closing")

    async def _endpoint_loop(self, endpoint: Endpoint) -> None:
        interval = endpoint_interval(endpoint, self.settings)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            if not self.owns(endpoint):  # another replica's job (for now)
                try:
                    await self._ownership_changed()
                except SourceStoppedError:
                    return
                next_at = loop.time()  # a job that arrives is polled at once
                continue
            key = job_key(self.name, endpoint)
            self._polling.add(key)
            try:
                await self.poll(endpoint)
            except SourceStoppedError:
                return
            except WorkMovedError:
                log.info("job moved to another replica", extra={"job": key})
                continue
            except Exception as exc:  # one bad poll must not end the endpoint's schedule
                self.counters.inc("polls_failed")
                log.error(
                    "poll failed",
                    extra={
                        "source": self.name,
                        "endpoint": endpoint.channel,
                        "error": self._redact(repr(exc)),
                    },
                )
            finally:
                self._ended_poll(key)
            next_at += interval
            now = loop.time()
            if next_at < now:  # fell behind (long retries): skip, don't burst
                next_at = now + interval
            try:
                await self._sleep(next_at - now)
            except SourceStoppedError:
                return

    async def poll(self, endpoint: Endpoint) -> bool:
        """One poll of ``endpoint``: every first request and its pages. True if all succeeded."""
        ok = True
        for first in endpoint.requests(self.settings):
            request: Request | None = first
            while request is not None:
                body = await self.fetch(endpoint, request)
                if body is None:
                    ok = False
                    break
                request = endpoint.next_page(request, body, self.settings)
        result = "ok" if ok else "failed"
        metrics.POLLS.labels(self.name, endpoint.channel, result).inc()
        self.counters.inc(f"polls_{result}")
        return ok

    async def _acquire(self, endpoint: Endpoint, cost: int) -> None:
        """Wait for the circuit breaker and the rate budget to allow one request."""
        loop = asyncio.get_running_loop()
        while True:
            if self.stopped_reason is not None:
                raise SourceStoppedError(self.stopped_reason)
            if not self.owns(endpoint):
                raise WorkMovedError(f"{job_key(self.name, endpoint)} moved to another replica")
            now = loop.time()
            wait = self.circuit.before_request(now)
            if wait <= 0:
                wait = self.budget.reserve(now, cost)
                if wait <= 0:
                    for window, left in self.budget.remaining(now).items():
                        metrics.BUDGET_REMAINING.labels(self.name, window).set(left)
                    return
                self.circuit.release_probe()
            await self._sleep(min(wait, MAX_SLEEP_S))

    async def fetch(self, endpoint: Endpoint, request: Request) -> Any | None:
        """Request with retries; publish and return the decoded body, or None on failure."""
        backoff = Backoff(
            initial=self.settings.backoff_initial_s,
            maximum=self.settings.backoff_max_s,
            reset_after=float("inf"),
        )
        loop = asyncio.get_running_loop()
        url = request_url(self._base_url, request)
        labels = (self.name, endpoint.channel)
        attempts = 1 + self.settings.max_retries
        http = self._http
        if http is None:
            raise RuntimeError("fetch() runs inside SourceRunner.run()")
        for attempt in range(1, attempts + 1):
            await self._acquire(endpoint, request.cost)
            started = loop.time()
            fetched: Fetched | None = None
            body: Any = NOT_JSON
            try:
                fetched = await http.get(url, request.params, self._headers)
            except TransientSourceError as exc:
                outcome = Outcome("transient", str(exc))
                status_label = "timeout" if "timeout" in str(exc) else "network"
            else:
                body = decode(fetched.text)
                outcome = classify(
                    self.source, fetched.status, fetched.headers, body, endpoint.validate
                )
                status_label = str(fetched.status)
            latency = loop.time() - started
            metrics.REQUESTS.labels(*labels, status_label).inc()
            metrics.LATENCY.labels(*labels).observe(latency)
            if outcome.ok and fetched is not None:
                await self._succeeded(endpoint, request, fetched, latency, attempt)
                return body
            metrics.ERRORS.labels(*labels, outcome.kind).inc()
            self.counters.inc(f"errors_{outcome.kind}")
            if outcome.kind == "rate_limited":
                await self._rate_limit(endpoint, outcome)
                continue
            if outcome.kind == "auth":
                await self._stop(outcome.reason)
                raise SourceStoppedError(outcome.reason)
            if outcome.kind == "transient":
                await self._failed(endpoint, outcome, attempt, attempts)
                if attempt < attempts:
                    await self._sleep(backoff.next_delay())
                continue
            self.circuit.release_probe()
            if outcome.kind == "invalid" and fetched is not None:
                await self._dead_letter(endpoint, request, fetched, latency, attempt, outcome)
            else:
                log.warning(
                    "request rejected",
                    extra={
                        "source": self.name,
                        "endpoint": endpoint.channel,
                        "reason": self._redact(outcome.reason),
                    },
                )
            return None
        return None

    # -- outcomes -------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return redact(text, [self.settings.api_key])

    def _envelope_args(
        self, endpoint: Endpoint, request: Request, fetched: Fetched, latency: float, attempt: int
    ) -> dict[str, Any]:
        return {
            "source": self.name,
            "channel": endpoint.channel,
            "url": request_url(self._base_url, request),
            "params": public_params(request.params, self.source.secret_params),
            "status": fetched.status,
            "latency_ms": latency * 1000,
            "attempt": attempt,
            "payload": fetched.text,
        }

    async def _succeeded(
        self, endpoint: Endpoint, request: Request, fetched: Fetched, latency: float, attempt: int
    ) -> None:
        now = asyncio.get_running_loop().time()
        self.last_success = now
        metrics.LAST_SUCCESS.labels(self.name, endpoint.channel).set(time.time())
        if self.circuit.on_success(now) == "circuit_closed":
            metrics.CIRCUIT_OPEN.labels(self.name).set(0)
            log.info("circuit closed", extra={"source": self.name})
            await self._publisher.feed_status(
                self.name, "circuit_closed", "probe succeeded", endpoint.channel
            )
        if self._rate_limited and not self.budget.paused(now):
            self._rate_limited = False
            metrics.RATE_LIMITED_UNTIL.labels(self.name).set(0)
            await self._publisher.feed_status(
                self.name, "resumed", "rate limit over", endpoint.channel
            )
        if endpoint.publish:
            envelope = build_envelope(
                **self._envelope_args(endpoint, request, fetched, latency, attempt)
            )
            if await self._publisher.envelope(envelope):
                metrics.PUBLISHED.labels(self.name, endpoint.channel).inc()
                self.counters.inc("published")
            else:
                metrics.DEAD_LETTERS.labels(self.name, endpoint.channel).inc()
                self.counters.inc("dead_letters")

    async def _rate_limit(self, endpoint: Endpoint, outcome: Outcome) -> None:
        wait = outcome.retry_after_s
        if wait is None:
            wait = self.settings.default_retry_after_s
        now = asyncio.get_running_loop().time()
        self.budget.pause_until(now + wait)
        self.circuit.release_probe()
        self._rate_limited = True
        metrics.RATE_LIMITED_UNTIL.labels(self.name).set(time.time() + wait)
        self.counters.inc("rate_limited")
        reason = self._redact(outcome.reason)
        log.warning(
            "rate limited",
            extra={
                "source": self.name,
                "endpoint": endpoint.channel,
                "wait_s": wait,
                "reason": reason,
            },
        )
        await self._publisher.feed_status(
            self.name, "rate_limited", reason, endpoint.channel, {"retry_after_s": wait}
        )

    async def _stop(self, reason: str) -> None:
        """Stop the source once, with one clear report; other sources keep running."""
        if self.stopped_reason is not None:
            return
        reason = self._redact(reason)
        self.stopped_reason = reason
        metrics.SOURCE_STOPPED.labels(self.name).set(1)
        self.counters.inc("sources_stopped")
        log.error(
            "source stopped: the provider refused the credentials; fix the key or plan and restart",
            extra={"source": self.name, "reason": reason},
        )
        await self._publisher.feed_status(
            self.name, "source_error", reason, details={"action": "source stopped"}
        )

    async def _failed(
        self, endpoint: Endpoint, outcome: Outcome, attempt: int, attempts: int
    ) -> None:
        now = asyncio.get_running_loop().time()
        reason = self._redact(outcome.reason)
        log.warning(
            "request failed",
            extra={
                "source": self.name,
                "endpoint": endpoint.channel,
                "attempt": attempt,
                "of": attempts,
                "reason": reason,
            },
        )
        if self.circuit.on_failure(now) == "circuit_open":
            metrics.CIRCUIT_OPEN.labels(self.name).set(1)
            log.error(
                "circuit open",
                extra={"source": self.name, "probe_in_s": self.circuit.current_open_s},
            )
            await self._publisher.feed_status(
                self.name,
                "circuit_open",
                reason,
                endpoint.channel,
                {"failures": self.circuit.failures, "probe_in_s": self.circuit.current_open_s},
            )

    async def _dead_letter(
        self,
        endpoint: Endpoint,
        request: Request,
        fetched: Fetched,
        latency: float,
        attempt: int,
        outcome: Outcome,
    ) -> None:
        envelope = build_envelope(
            **self._envelope_args(endpoint, request, fetched, latency, attempt)
        )
        reason = self._redact(outcome.reason)
        await self._publisher.dead_letter(envelope, reason, InvalidResponseError(reason))
        metrics.DEAD_LETTERS.labels(self.name, endpoint.channel).inc()
        self.counters.inc("dead_letters")
