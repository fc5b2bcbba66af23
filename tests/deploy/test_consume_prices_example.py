"""The subscriber guide's example (examples/consume_prices.py) against the local broker."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import ModuleType

import pytest

from coinstream.runtime import KafkaProducer, KafkaSettings
from coinstream.schemas import PriceEvent, Topics, deterministic_id

from .deploy_helpers import ROOT

pytestmark = pytest.mark.kafka

EXAMPLE = ROOT / "examples" / "consume_prices.py"
SESSION_TIMEOUT_MS = 2000  # the local broker makes a group join wait half of it


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("consume_prices_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trades(symbol: str, prices: list[str], first: int = 0) -> list[PriceEvent]:
    """Trades numbered from ``first``, one second apart from 2026-01-05T14:30:00Z."""
    start = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
    base, quote = symbol.split("-")
    return [
        PriceEvent(
            event_id=deterministic_id("trade", "binance", symbol, n),
            event_time=start + timedelta(seconds=n),
            received_at=start + timedelta(seconds=n, milliseconds=5),
            source="binance",
            kind="trade",
            symbol=symbol,
            base=base,
            quote=quote,
            price=Decimal(price),
            size=Decimal("0.5"),
            trade_id=str(n),
        )
        for n, price in enumerate(prices, first)
    ]


async def publish(settings: KafkaSettings, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    async with KafkaProducer(settings) as producer:
        for key, value in values:
            await producer.send_and_wait(topic, value, key=key)


async def test_example_decodes_every_price_in_key_order(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """Events come back equal to what was produced, in order per symbol; a record the package
    cannot decode is skipped without stopping the consumer."""
    btc = trades("BTC-USDT", ["94012.35", "94013.00", "94011.10", "94020.00"])
    eth = trades("ETH-USDT", ["3310.5", "3311.25"])
    interleaved = [btc[0], eth[0], btc[1], eth[1], btc[2], btc[3]]
    values = [(e.key, e.to_json()) for e in interleaved]
    values.insert(3, (b"BTC-USDT", b'{"type": "price", "kind": "from-the-future"}'))
    await publish(kafka_settings, topics.prices, values)

    example = load_example()
    seen: list[PriceEvent] = []
    received = await asyncio.wait_for(
        example.consume_prices(
            kafka_settings.bootstrap_servers,
            group_id=f"example-{uuid.uuid4().hex[:8]}",
            topic_prefix=topics.prefix,
            handle=seen.append,
            max_events=len(btc) + len(eth),
            session_timeout_ms=SESSION_TIMEOUT_MS,
        ),
        timeout=60,
    )
    assert received == seen
    assert sorted(received, key=lambda e: e.event_id) == sorted(btc + eth, key=lambda e: e.event_id)
    assert [e for e in received if e.symbol == "BTC-USDT"] == btc
    assert [e for e in received if e.symbol == "ETH-USDT"] == eth
    assert all(isinstance(e.price, Decimal) for e in received)


async def test_example_resumes_from_committed_offsets(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """A second run of the same group reads only what was published after the first run."""
    first, later = trades("SOL-USDT", ["180.1", "180.2"]), trades("SOL-USDT", ["181.5"], 2)
    await publish(kafka_settings, topics.prices, [(e.key, e.to_json()) for e in first])
    example = load_example()
    group = f"example-{uuid.uuid4().hex[:8]}"

    async def run(expected: int) -> list[PriceEvent]:
        events: list[PriceEvent] = await asyncio.wait_for(
            example.consume_prices(
                kafka_settings.bootstrap_servers,
                group_id=group,
                topic_prefix=topics.prefix,
                handle=lambda e: None,
                max_events=expected,
                session_timeout_ms=SESSION_TIMEOUT_MS,
            ),
            timeout=60,
        )
        return events

    assert await run(2) == first
    await publish(kafka_settings, topics.prices, [(e.key, e.to_json()) for e in later])
    assert await run(1) == later


async def test_example_cli_prints_one_line_per_event(
    kafka_settings: KafkaSettings, topics: Topics
) -> None:
    """`python examples/consume_prices.py ...` filters by symbol and prints each event."""
    events = trades("BTC-USDT", ["94012.35", "94013"]) + trades("ETH-USDT", ["3310.5"])
    await publish(kafka_settings, topics.prices, [(e.key, e.to_json()) for e in events])
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--bootstrap",
        kafka_settings.bootstrap_servers,
        "--group",
        f"example-{uuid.uuid4().hex[:8]}",
        "--prefix",
        topics.prefix,
        "--symbol",
        "BTC-USDT",
        "--max-events",
        "2",
        "--session-timeout-ms",
        str(SESSION_TIMEOUT_MS),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().splitlines() == [
        "2026-01-05T14:30:00.000+00:00 BTC-USDT trade 94012.35 (binance)",
        "2026-01-05T14:30:01.000+00:00 BTC-USDT trade 94013 (binance)",
    ]
