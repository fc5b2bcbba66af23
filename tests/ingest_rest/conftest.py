"""Fixtures for ingest-rest tests: the simulator and a publisher on the real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from coinstream.ingest_rest.publisher import Publisher
from coinstream.marketsim.market import Market
from coinstream.marketsim.server import SimServer
from coinstream.runtime import KafkaProducer, KafkaSettings


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(Market(rate=0, seed=11)) as server:
        yield server


@pytest.fixture
async def publisher(kafka_settings: KafkaSettings) -> AsyncIterator[Publisher]:
    async with KafkaProducer(kafka_settings) as producer:
        yield Publisher(producer, "ingest-rest-test", timeout_s=10)
