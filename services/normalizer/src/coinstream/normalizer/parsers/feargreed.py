"""alternative.me Fear & Greed (``/fng/``): every value is a string; the newest entry is first.

Each entry becomes a ``SentimentEvent`` (subject ``market``, metric ``fear_greed``) with the
provider's band label; ``timestamp`` is Unix seconds at 00:00 UTC.
"""

from __future__ import annotations

from coinstream.normalizer.errors import ParseError
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.parsers.common import (
    AnyEvent,
    ParserPlugin,
    channel_error,
    sentiment,
)
from coinstream.normalizer.values import as_dict, as_list, loads, parse_time, require, to_decimal
from coinstream.schemas.fastenvelope import Envelope

SOURCE = "feargreed"


def parse(env: Envelope, registry: Registry, hint: str | None = None) -> list[AnyEvent]:
    if env.channel.rstrip("/") != "/fng":
        raise channel_error(env)
    body = as_dict(loads(env.payload), "fng body")
    error = (body.get("metadata") or {}).get("error")
    if error:
        raise ParseError(f"alternative.me error: {error}")
    out: list[AnyEvent] = []
    for raw_row in as_list(require(body, "data", "fng body"), "fng data"):
        row = as_dict(raw_row, "fng entry")
        value = to_decimal(require(row, "value", "fng entry"), "value")
        event_time = parse_time(require(row, "timestamp", "fng entry"), "s", "timestamp")
        out.append(
            sentiment(
                env, SOURCE, "market", "fear_greed", value, event_time,
                classification=row.get("value_classification"), unit="index",
            )
        )  # fmt: skip
    return out


PLUGIN = ParserPlugin(parse)
"""The entry point (an aggregator: its prices feed no candles or consolidation)."""
