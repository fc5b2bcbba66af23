"""Fixtures for the alerts tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from coinstream.alerts.settings import AlertsSettings

from .alerts_helpers import RunningService


@pytest.fixture
async def run_service() -> AsyncIterator[Callable[[AlertsSettings], Any]]:
    started: list[RunningService] = []

    async def start(settings: AlertsSettings) -> RunningService:
        svc = RunningService(settings)
        started.append(svc)
        return await svc.start()

    yield start
    for svc in started:
        if svc.task is not None and not svc.task.done():
            await svc.stop()
