"""Record raw envelopes to gzip JSONL and replay them into the raw topics.

A recording is one ``RawEnvelope`` JSON document per line, exactly what the live service
publishes. Replay publishes each envelope unchanged except ``replayed=true``, keyed the same way
as live (the payload is classified again by the venue protocol), either as fast as possible or
at the recorded pace (optionally sped up).
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from coinstream.ingest_ws.app import FeedSet
from coinstream.ingest_ws.errors import IngestWsError, RecordingError
from coinstream.ingest_ws.publisher import FileRecorder
from coinstream.ingest_ws.settings import IngestWsServiceSettings
from coinstream.ingest_ws.venues import VenueProtocol, protocols
from coinstream.runtime import KafkaProducer, ensure_topics
from coinstream.schemas import RawEnvelope, decode_envelope

log = logging.getLogger(__name__)


def read_recording(path: Path) -> Iterator[RawEnvelope]:
    """Envelopes of a recording, in order. Raises ``RecordingError`` naming a bad line."""
    if not path.exists():
        raise RecordingError(f"recording {path} does not exist")
    with gzip.open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield decode_envelope(line)
            except ValueError as exc:
                raise RecordingError(f"{path}:{n}: not a raw envelope ({exc})") from exc


async def record(
    settings: IngestWsServiceSettings,
    path: Path,
    stop: asyncio.Event,
    duration_s: float | None = None,
    max_messages: int | None = None,
) -> int:
    """Connect the enabled venues and write every envelope to ``path`` until a limit or stop.

    Raises ``RecordingError`` when no venue could be connected at all (the file is then
    empty): a recording of nothing must not look like a success.
    """
    recorder = FileRecorder(path)
    feeds = FeedSet(settings, recorder)
    feeds_stop = asyncio.Event()
    runner = asyncio.create_task(feeds.run(feeds_stop))
    start = time.monotonic()
    try:
        while not stop.is_set() and not runner.done():
            if duration_s is not None and time.monotonic() - start >= duration_s:
                break
            if max_messages is not None and recorder.count >= max_messages:
                break
            try:
                await asyncio.wait_for(stop.wait(), 0.05)
            except TimeoutError:
                pass
    finally:
        feeds_stop.set()
        await asyncio.gather(runner, return_exceptions=True)
        recorder.close()
    log.info("recorded", extra={"path": str(path), "envelopes": recorder.count})
    if recorder.count == 0 and not any(s.connections for v in feeds.venues for s in v.shards):
        venues = ", ".join(f"{v.name} ({v.settings.url})" for v in feeds.venues)
        raise RecordingError(
            f"nothing recorded: no venue could be reached ({venues or 'no venue enabled'}); "
            "check the INGEST_WS_<VENUE>__URL settings and the network"
        )
    return recorder.count


def _protocols(settings: IngestWsServiceSettings) -> dict[str, VenueProtocol]:
    venues = settings.venues()
    out: dict[str, VenueProtocol] = {}
    for name, cls in protocols().items():
        try:
            out[name] = cls(venues[name])
        except IngestWsError:
            continue
    return out


async def replay(
    settings: IngestWsServiceSettings,
    path: Path,
    stop: asyncio.Event,
    speed: float | None = None,
) -> int:
    """Publish a recording to the raw topics. ``speed`` None = as fast as possible, 1.0 = as
    recorded, 2.0 = twice as fast. Returns the number of envelopes published."""
    protocols = _protocols(settings)
    topics = settings.kafka.topics
    envelopes = read_recording(path)
    if settings.kafka.create_topics:
        wanted = {topics.raw(n) for n in protocols}
        await ensure_topics(settings.kafka, [s for s in topics.specs() if s.name in wanted])
    count = 0
    loop = asyncio.get_running_loop()
    async with KafkaProducer(settings.kafka) as producer:
        first: float | None = None
        started = loop.time()
        pending = []
        for env in envelopes:
            if stop.is_set():
                break
            if speed is not None:
                at = env.received_at.timestamp()
                first = at if first is None else first
                wait = (at - first) / speed - (loop.time() - started)
                if wait > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), wait)
                        break
                    except TimeoutError:
                        pass
            protocol = protocols.get(env.source)
            if protocol is not None:
                key = protocol.key_for(protocol.classify(env.payload))
            else:
                key = f"{env.source}:{env.channel}".encode()
            value = env.model_copy(update={"replayed": True}).to_json()
            pending.append(await producer.send(topics.raw(env.source), value, key=key))
            count += 1
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    log.info("replayed", extra={"path": str(path), "envelopes": count})
    return count
