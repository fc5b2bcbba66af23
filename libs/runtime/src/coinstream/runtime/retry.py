"""Retrying transient failures with ``Backoff`` until they pass or the service stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from coinstream.runtime.backoff import Backoff
from coinstream.runtime.errors import CoinstreamError
from coinstream.runtime.failures import describe, is_transient

log = logging.getLogger(__name__)

T = TypeVar("T")


class StoppedError(CoinstreamError):
    """The service was asked to stop while an operation was still being retried."""


async def sleep_unless_stopped(delay: float, stop: asyncio.Event | None) -> None:
    """Sleep ``delay`` seconds; raise ``StoppedError`` as soon as ``stop`` is set."""
    if stop is None:
        await asyncio.sleep(delay)
        return
    if stop.is_set():
        raise StoppedError("stopping")
    try:
        await asyncio.wait_for(stop.wait(), delay)
    except TimeoutError:
        return
    raise StoppedError("stopping")


async def retry_transient(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    stop: asyncio.Event | None = None,
    backoff: Backoff | None = None,
    transient: Callable[[BaseException], bool] = is_transient,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """Run ``operation`` until it succeeds, retrying transient failures with backoff.

    Permanent failures (``transient(exc)`` is false) propagate at once for the caller to
    isolate and dead-letter. When ``stop`` is set while waiting, ``StoppedError`` is raised so
    the caller can leave without committing what was not done.
    """
    backoff = backoff or Backoff(initial=0.2, maximum=10.0)
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not transient(exc):
                raise
            delay = backoff.next_delay()
            if on_retry is not None:
                on_retry(exc, delay)
            log.warning(
                f"{what} failed; retrying",
                extra={"error": describe(exc), "retry_in_s": round(delay, 3)},
            )
            await sleep_unless_stopped(delay, stop)
