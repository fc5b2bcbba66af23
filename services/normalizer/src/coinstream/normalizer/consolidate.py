"""The consolidate role's core: venue trades keyed by asset in, consolidated prices out.

The normalize role publishes every venue spot trade (its canonical ``PriceEvent`` JSON) to the
internal topic ``<prefix>.normalizer.trades-by-asset.v1``, keyed by asset, the way Kafka
Streams repartitions: all venues of an asset meet in one partition, so this stage scales
with that topic's partitions and needs no single replica. ``ConsolidationCore`` offers the
engine the same interface as ``core.Normalizer`` (``process``, ``floor``, ``reset``,
``stats``) and does no I/O.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from pydantic import ValidationError

from coinstream.normalizer.consolidated import TP, Consolidator
from coinstream.normalizer.core import DeadLetterOut, Output
from coinstream.normalizer.dedup import DedupWindow
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.settings import NormalizerSettings
from coinstream.schemas import PriceEvent, Topics, decode_event, describe_error
from coinstream.schemas.fastcodec import read_price

log = logging.getLogger(__name__)


class ConsolidationCore:
    """Pure processing state of the consolidate role. One per engine; not thread-safe."""

    def __init__(self, settings: NormalizerSettings, topics: Topics) -> None:
        k = settings.consolidated
        self.consolidator = Consolidator(
            k.interval_s,
            k.window_s,
            k.stale_after_s,
            k.outlier_pct,
            k.quote_aliases,
            settings.watermark_lead_s,
            k.grace_s,
        )
        self.registry = Registry(assets=())  # the engine reports unmapped ids: none here
        # A normalize replica that restarts re-publishes what was in flight: the same trade
        # (same event id) must count once.
        self.dedup = DedupWindow(settings.dedup_window)
        self._prices = topics.prices
        self.stats: dict[str, dict[str, int]] = {
            "records": defaultdict(int),
            "events": defaultdict(int),
            "dead_letters": defaultdict(int),
            "misc": defaultdict(int),
        }
        self.totals: dict[str, int] = defaultdict(int)

    def reset(self) -> None:
        self.consolidator.reset()
        self.dedup.reset()

    def process(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> tuple[list[Output], DeadLetterOut | None]:
        """Account one trade; return the consolidated prices of the intervals it closes, or a
        dead letter for a record that is not a canonical venue trade."""
        self.stats["records"]["trades-by-asset"] += 1
        self.totals["records"] += 1
        try:
            trade = _trade(value)
        except ValueError as exc:
            self.stats["dead_letters"]["ContractViolation"] += 1
            self.totals["dead_letters"] += 1
            reason = f"not a canonical venue trade: {exc}"
            return [], DeadLetterOut(
                value or b"", key, reason, "ContractViolation", topic, partition, offset
            )
        event_id, source, symbol, base, quote, asset_id, time, price, size, received = trade
        if self.dedup.seen(event_id):
            self.stats["misc"]["duplicates"] += 1
            self.totals["duplicates"] += 1
            return [], None
        out = []
        for event in self.consolidator.add(
            source, symbol, base, quote, asset_id, time, price, size, received,
            (topic, partition), offset,
        ):  # fmt: skip
            self.stats["events"]["price"] += 1
            out.append(Output(self._prices, event.key, event.to_json()))
        return out, None

    def floor(self, tp: TP) -> int | None:
        """Oldest offset of ``tp`` still inside a consolidation window."""
        return self.consolidator.floor(tp)


_Trade = tuple[str, str, str, str, str, "str | None", datetime, Decimal, Decimal, datetime]


def _trade(value: bytes | None) -> _Trade:
    """The fields consolidation needs, read with the fast reader (the models decide what it
    is unsure of); ``ValueError`` for anything else."""
    if value is None:
        raise ValueError("tombstone (the record has no value)")
    record = read_price(value)
    if record is not None:
        p = record.wire
        if p.kind != "trade" or p.price is None or p.size is None:
            raise ValueError(f"kind {p.kind!r} with price {p.price!r} and size {p.size!r}")
        return (
            p.event_id, p.source, p.symbol, p.base, p.quote, p.asset_id, record.event_time,
            Decimal(p.price), Decimal(p.size), record.received_at,
        )  # fmt: skip
    try:
        event = decode_event(value)
    except ValidationError as exc:
        raise ValueError(describe_error(exc)) from None
    if not isinstance(event, PriceEvent) or event.kind != "trade":
        raise ValueError(f"a {type(event).__name__} is not a trade")
    if event.price is None or event.size is None:
        raise ValueError("a trade without price or size")
    return (
        event.event_id, event.source, event.symbol, event.base, event.quote, event.asset_id,
        event.event_time,
        event.price, event.size, event.received_at,
    )  # fmt: skip
