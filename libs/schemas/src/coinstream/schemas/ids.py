"""Deterministic event identifiers: the same native event always gets the same ``event_id``."""

from __future__ import annotations

import hashlib
import uuid


def deterministic_id(kind: str, *parts: object) -> str:
    """Return a UUID-formatted id derived from ``kind`` and the native identity ``parts``.

    ``deterministic_id("trade", "binance", "BTC-USDT", 12345)`` is stable across processes,
    restarts and replays, so downstream stores can absorb duplicates by id.
    """
    text = "\x1f".join([kind, *(str(p) for p in parts)])
    digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest))
