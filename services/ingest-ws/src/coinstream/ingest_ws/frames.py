"""What a venue frame is, decided without I/O: data, heartbeat, ack, error, pong, shutdown,
fatal (do not reconnect).

``Frame`` carries what the connection loop needs: the envelope ``channel``, the canonical
symbol for the Kafka key, the streams it feeds (for the stale watchdog), sequence points (for
the gap tracker) and the exchange time (for the lag metric).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

DATA = "data"
HEARTBEAT = "heartbeat"
CONTROL = "control"  # subscribe acks, subscriptions lists, status messages
ERROR = "error"
PONG = "pong"
SHUTDOWN = "shutdown"
FATAL = "fatal"  # the venue says not to reconnect: a rejected key, plan or credit limit
UNKNOWN = "unknown"

StreamId = tuple[str, str]
"""(channel, canonical symbol), e.g. ("trade", "BTC-USDT")."""

CONNECTION_SCOPE = "*"
"""Sequence key prefix for counters that restart with each connection (Coinbase)."""


@dataclass(slots=True)
class Frame:
    kind: str
    channel: str
    symbol: str | None = None
    streams: tuple[StreamId, ...] = ()
    seq: tuple[tuple[str, int], ...] = ()
    exchange_ms: int | None = None
    detail: str = ""
    subscriptions: int | None = None  # the connection's subscriptions an ack counts

    @property
    def is_data(self) -> bool:
        return self.kind == DATA


def json_object(text: str | bytes) -> dict[str, Any] | Frame:
    """A frame's JSON object, or the ``unknown`` frame that says why it is not one."""
    try:
        msg: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        return Frame(UNKNOWN, "unknown", detail="not JSON")
    if not isinstance(msg, dict):
        return Frame(UNKNOWN, "unknown")
    return msg


@dataclass(slots=True, eq=False)
class Route:
    """What every data frame of one known stream means, worked out once per stream name.

    Venues with a ``fast`` path return it per frame instead of building a ``Frame``: the
    envelope channel, the Kafka key, the watchdog stream and the gap-tracker key (if the
    stream carries a sequence id). Compared by identity, so it is a cheap dict key.
    """

    channel: str
    symbol: str | None
    key: bytes
    stream: StreamId | None
    seq_key: str | None = None


def iso_to_ms(text: str) -> int | None:
    """RFC3339 with up to nanoseconds (``2023-02-09T20:30:37.167359596Z``) -> epoch ms."""
    try:
        if text.endswith(("Z", "z")):
            text = text[:-1]
        head, dot, frac = text.partition(".")
        if dot:
            text = f"{head}.{frac[:6]}"
        return int(datetime.fromisoformat(text + "+00:00").timestamp() * 1000)
    except (ValueError, TypeError):
        return None
