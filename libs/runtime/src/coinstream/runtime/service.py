"""Process entry helper: signals, graceful shutdown with a deadline, exit codes."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

ServiceMain = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
"""A service's main coroutine: runs until ``stop`` is set, then drains and returns."""


async def run_until_stopped(main: ServiceMain, shutdown_timeout_s: float) -> int:
    """Run ``main(stop)``; SIGTERM/SIGINT set ``stop``. Cancel if draining exceeds the deadline.

    Returns the process exit code: 0 after a clean stop, 1 if ``main`` failed.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(main(stop), name="service-main")
    stop_wait = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            log.info("stop requested; draining", extra={"deadline_s": shutdown_timeout_s})
            try:
                await asyncio.wait_for(asyncio.shield(task), shutdown_timeout_s)
            except TimeoutError:
                log.error("shutdown deadline passed; cancelling")
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return 1
        exc = task.exception() if not task.cancelled() else None
        if exc is not None:
            log.error("service failed", exc_info=exc)
            return 1
        log.info("stopped cleanly")
        return 0
    finally:
        stop_wait.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run(main: ServiceMain, shutdown_timeout_s: float) -> int:
    """Blocking entry for ``__main__``: ``sys.exit(run(main, settings.shutdown_timeout_s))``."""
    return asyncio.run(run_until_stopped(main, shutdown_timeout_s))
