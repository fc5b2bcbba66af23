"""Read ``coinstream.prices.v1`` with aiokafka and the ``coinstream-schemas`` package.

The subscriber guide (docs/subscribers.md) walks through it. Run it against a broker::

    pip install aiokafka coinstream-schemas
    python examples/consume_prices.py --bootstrap localhost:9092 --group my-team-prices

It prints one line per price event and commits offsets after handling each batch, so a
restart resumes where it stopped (at-least-once: a crash before the commit replays the batch;
``event_id`` identifies a replayed event).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable, Collection

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from coinstream.schemas import PriceEvent, Topics, decode_event

log = logging.getLogger("consume_prices")

Handler = Callable[[PriceEvent], None]


def describe(event: PriceEvent) -> str:
    """One line per event: time, symbol, kind, price or bid/ask, source."""
    if event.price is not None:
        value = f"{event.price}"
    else:
        value = f"bid {event.bid} ask {event.ask}"
    when = event.event_time.isoformat(timespec="milliseconds")
    return f"{when} {event.symbol} {event.kind} {value} ({event.source})"


async def consume_prices(
    bootstrap_servers: str,
    *,
    group_id: str,
    topic_prefix: str = "coinstream",
    symbols: Collection[str] = (),
    handle: Handler = lambda event: print(describe(event), flush=True),
    max_events: int | None = None,
    idle_timeout_s: float | None = None,
    session_timeout_ms: int = 10_000,
) -> list[PriceEvent]:
    """Consume price events, call ``handle`` for each, and return them.

    Stops after ``max_events`` events, after ``idle_timeout_s`` seconds without a new one, or
    when cancelled. ``symbols`` filters by canonical symbol (the record key), e.g. BTC-USDT.
    A new group starts from the earliest retained record; an existing group resumes from
    its committed offsets.
    """
    wanted = {s.encode() for s in symbols}
    consumer = AIOKafkaConsumer(
        Topics(topic_prefix).prices,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,  # commit after handling, never before
        auto_offset_reset="earliest",
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(session_timeout_ms // 3, 100),
    )
    received: list[PriceEvent] = []
    await consumer.start()
    try:
        last_event = time.monotonic()
        while max_events is None or len(received) < max_events:
            batch = await consumer.getmany(timeout_ms=200, max_records=500)
            for records in batch.values():
                # records of one partition arrive in offset order; one key = one partition
                for record in records:
                    if wanted and record.key not in wanted:
                        continue
                    try:
                        event = decode_event(record.value)
                    except ValidationError as exc:
                        # e.g. a value added after this package version: skip, upgrade later
                        log.warning(
                            "skipping undecodable record %s[%d]@%d: %s",
                            record.topic,
                            record.partition,
                            record.offset,
                            exc.errors()[0]["msg"],
                        )
                        continue
                    if isinstance(event, PriceEvent):
                        handle(event)
                        received.append(event)
                        last_event = time.monotonic()
            if batch:
                await consumer.commit()
            if idle_timeout_s is not None and time.monotonic() - last_event > idle_timeout_s:
                break
    finally:
        await consumer.stop()
    return received


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print Coinstream price events.")
    parser.add_argument("--bootstrap", default="localhost:9092", help="Kafka bootstrap servers")
    parser.add_argument("--group", required=True, help="your consumer group id")
    parser.add_argument("--prefix", default="coinstream", help="topic prefix of the deployment")
    parser.add_argument("--symbol", action="append", default=[], help="e.g. BTC-USDT (repeat)")
    parser.add_argument("--max-events", type=int, default=None)
    parser.add_argument("--idle-timeout", type=float, default=None, help="stop after N idle s")
    parser.add_argument("--session-timeout-ms", type=int, default=10_000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        asyncio.run(
            consume_prices(
                args.bootstrap,
                group_id=args.group,
                topic_prefix=args.prefix,
                symbols=args.symbol,
                max_events=args.max_events,
                idle_timeout_s=args.idle_timeout,
                session_timeout_ms=args.session_timeout_ms,
            )
        )
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
