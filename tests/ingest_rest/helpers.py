"""Helpers shared by the ingest-rest tests (settings for fast runs, running a source)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from coinstream.ingest_rest.poller import SourceRunner

SIM_PATHS = {
    "coingecko": "/coingecko/api/v3",
    "coinmarketcap": "/cmc",
    "cmc-dex": "/cmc",
    "feargreed": "/feargreed",
}


def fast(**overrides: Any) -> dict[str, Any]:
    """Settings values for quick tests: short timeouts, small backoff, long default interval."""
    values: dict[str, Any] = {
        "interval_s": 60.0,
        "timeout_s": 2.0,
        "max_retries": 2,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.2,
        "default_retry_after_s": 1.0,
    }
    values.update(overrides)
    return values


async def run_until(
    runner: SourceRunner, condition: Callable[[], bool], timeout: float = 10.0
) -> bool:
    """Run ``runner`` until ``condition()`` holds (True) or ``timeout`` passes (False)."""
    task = asyncio.create_task(runner.run())
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        while not condition():
            if task.done() or asyncio.get_running_loop().time() > deadline:
                return condition()
            await asyncio.sleep(0.02)
        return True
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
