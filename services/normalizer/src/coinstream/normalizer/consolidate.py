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

import msgspec
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
        """Account the trades of one record (one trade, or a JSON array of them as the
        aiokafka engine groups them); return the consolidated prices of the intervals they
        close, and a dead letter naming what in the record is not a canonical venue trade."""
        self.stats["records"]["trades-by-asset"] += 1
        self.totals["records"] += 1
        out: list[Output] = []
        problems: list[str] = []
        try:
            items = _items(value)
        except ValueError as exc:
            items, problems = [], [str(exc)]
        for item in items:
            try:
                trade = _trade(item)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            event_id, source, symbol, base, quote, asset_id, time, price, size, received = trade
            if self.dedup.seen(event_id):
                self.stats["misc"]["duplicates"] += 1
                self.totals["duplicates"] += 1
                continue
            for event in self.consolidator.add(
                source, symbol, base, quote, asset_id, time, price, size, received,
                (topic, partition), offset,
            ):  # fmt: skip
                self.stats["events"]["price"] += 1
                out.append(Output(self._prices, event.key, event.to_json()))
        if not problems:
            return out, None
        self.stats["dead_letters"]["ContractViolation"] += 1
        self.totals["dead_letters"] += 1
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        reason = f"not a canonical venue trade: {problems[0]}{more}"
        letter = DeadLetterOut(
            value or b"", key, reason, "ContractViolation", topic, partition, offset
        )
        return out, letter

    def floor(self, tp: TP) -> int | None:
        """Oldest offset of ``tp`` still inside a consolidation window."""
        return self.consolidator.floor(tp)


_Trade = tuple[str, str, str, str, str, "str | None", datetime, Decimal, Decimal, datetime]


_raw_list = msgspec.json.Decoder(list[msgspec.Raw]).decode


def _items(value: bytes | None) -> list[bytes | msgspec.Raw]:
    """The trades of a record: the value itself, or the elements of a JSON array."""
    if value is None:
        raise ValueError("tombstone (the record has no value)")
    if value[:1] != b"[":
        return [value]
    try:
        return list(_raw_list(value))
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a JSON array of trades: {exc}") from None


def _trade(value: bytes | msgspec.Raw | None) -> _Trade:
    """The fields consolidation needs, read with the fast reader (the models decide what it
    is unsure of); ``ValueError`` for anything else."""
    if value is None:
        raise ValueError("tombstone (the record has no value)")
    value = bytes(value)
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
