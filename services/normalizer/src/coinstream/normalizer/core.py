"""The normalizer core shared by both engines: raw record in, canonical records out.

``Normalizer.process()`` is synchronous and does no I/O: it decodes the envelope, runs the
source parser, checks every event against the contract (``coinstream.schemas.limits``), drops
duplicates, feeds venue trades to the candle book and (as their canonical JSON, keyed by
asset) to the internal trades-by-asset topic that the consolidate role reads
(``consolidate.py``), and returns the records to produce and, for anything it could not turn
into valid events, a dead letter with the reason. ``floor(tp)`` names the oldest record that
still feeds an open candle: a restart re-reads from there to rebuild it, and the engine
suppresses what those re-read records had already produced. The dedup window holds nothing
back: downstream absorbs duplicates by event id.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, Protocol

from pydantic import ValidationError

from coinstream.normalizer import instruments
from coinstream.normalizer.candles import CandleBook
from coinstream.normalizer.dedup import DedupWindow
from coinstream.normalizer.errors import ParseError
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.parsers import (
    Parser,
    ParserPlugin,
    as_plugin,
    decode_envelope,
    load_parsers,
)
from coinstream.normalizer.parsers.common import AnyEvent
from coinstream.normalizer.settings import NormalizerSettings
from coinstream.schemas import Topics, describe_error, limits
from coinstream.schemas.fastprice import FastPrice

log = logging.getLogger(__name__)

TP = tuple[str, int]
_new = tuple.__new__  # builds an Output without its Python-level __new__ (hot path)


class Output(NamedTuple):
    topic: str
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class DeadLetterOut:
    value: bytes | None
    key: bytes | None
    reason: str
    error_class: str
    origin_topic: str
    origin_partition: int
    origin_offset: int


class Stage(Protocol):
    """What an engine runs: the normalize role's ``Normalizer`` or the consolidate role's
    ``ConsolidationCore``."""

    stats: dict[str, dict[str, int]]
    totals: dict[str, int]

    def process(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> tuple[list[Output], DeadLetterOut | None]: ...

    def floor(self, tp: TP) -> int | None: ...

    def reset(self) -> None: ...


class Normalizer:
    """Pure processing state. One instance per engine; not thread-safe."""

    def __init__(
        self,
        settings: NormalizerSettings,
        topics: Topics,
        registry: Registry,
        parsers: Mapping[str, ParserPlugin | Parser] | None = None,
    ) -> None:
        self.settings = settings
        found = load_parsers() if parsers is None else parsers
        self.parsers = {name: as_plugin(p) for name, p in found.items()}
        self.topics = topics
        self.registry = registry
        self.dedup = DedupWindow(settings.dedup_window)
        c = settings.candles
        lead = settings.watermark_lead_s
        self.candles = (
            CandleBook(c.interval_s, c.grace_s, lead, c.revise_within_s) if c.enabled else None
        )
        # Venue spot trades go to the internal trades-by-asset topic, keyed by asset: the
        # consolidate role builds the cross-venue price from there (consolidate.py).
        self._by_asset = topics.trades_by_asset if settings.consolidated.enabled else None
        self.batch_topic = self._by_asset
        """Outputs the engine may send grouped per key, as JSON arrays (``consolidate.py``)."""
        self.max_future_skew = timedelta(seconds=settings.max_future_skew_s)

        self._topic_of = {
            "price": topics.prices,
            "sentiment": topics.sentiment,
            "metadata": topics.metadata,
            "candle": topics.candles,
        }
        self.stats: dict[str, dict[str, int]] = {
            "records": defaultdict(int),
            "events": defaultdict(int),
            "dead_letters": defaultdict(int),
            "misc": defaultdict(int),
        }
        self.totals: dict[str, int] = defaultdict(int)
        self._prices = topics.prices
        self._candles_from_agg = settings.candles.from_agg_trades
        self._hints: dict[bytes, str] = {}
        self._source_of: dict[str, str | None] = {}
        self._receipt_limit = datetime.min.replace(tzinfo=UTC)

    def reset(self) -> None:
        """Forget all state (after a rebalance the engine re-reads from committed offsets)."""
        self.dedup.reset()
        if self.candles:
            self.candles.reset()

    def process(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> tuple[list[Output], DeadLetterOut | None]:
        """Transform one raw record. Never raises: what cannot be turned into valid events
        comes back as a dead letter (next to the outputs of the events that could)."""
        out: list[Output] = []
        try:
            if value is None:
                raise ParseError(
                    "tombstone: the record has no value; raw topics carry raw envelopes only"
                )
            problems = self._process(topic, partition, offset, key, value, out)
            if not problems:
                return out, None
            reason, error_class = _contract_reason(problems), "ContractViolation"
        except ParseError as exc:
            reason, error_class = exc.reason, type(exc).__name__
        except ValidationError as exc:  # a parser built an event the contract refuses
            reason, error_class = f"invalid event: {describe_error(exc)}", "ContractViolation"
        except Exception as exc:  # a parser bug must not stop the stream
            log.exception("unexpected error normalizing a record")
            reason, error_class = f"internal error: {exc!r}", type(exc).__name__
        self.stats["dead_letters"][error_class] += 1
        self.totals["dead_letters"] += 1
        return out, DeadLetterOut(value, key, reason, error_class, topic, partition, offset)

    def _announce(self, venue: str, native: str, out: list[Output]) -> None:
        """The instrument entity of a venue instrument whose first valid event is published."""
        inst = self.registry.new_instruments.pop((venue, native), None)
        if inst is None:
            return
        try:
            event = instruments.instrument_event(venue, inst, self.registry, datetime.now(UTC))
        except ValidationError as exc:  # its prices passed, so this is not expected
            log.warning("instrument entity not announced", extra={"error": describe_error(exc)})
            return
        out.append(self._output(event))

    def _check_envelope(self, topic: str, source: str, received_at: datetime) -> None:
        named = self._source_of.get(topic, "")
        if named == "":
            named = self._source_of[topic] = self.topics.source_of_raw(topic)
        if named is not None and named != source:
            raise ParseError(
                f"envelope source {source!r} does not match its topic {topic!r}: "
                f"records on it must come from {named!r}"
            )
        # Receipt times up to (clock + skew) as last read are fine: the clock only moves on,
        # so it is read again only for a receipt time beyond that.
        if received_at <= self._receipt_limit:
            return
        self._receipt_limit = datetime.now(UTC) + self.max_future_skew
        if received_at > self._receipt_limit:
            raise ParseError(
                f"envelope received_at {received_at.isoformat()} is in the future "
                f"(more than {self.max_future_skew.total_seconds():g} s ahead of this clock)"
            )

    def _process(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        out: list[Output],
    ) -> list[str]:
        env = decode_envelope(value)
        stats = self.stats
        stats["records"][env.source] += 1
        if env.backfilled:
            stats["misc"]["backfilled"] += 1
        self.totals["records"] += 1
        parser = self.parsers.get(env.source)
        if parser is None:
            raise ParseError(f"no parser for source {env.source!r}")
        self._check_envelope(topic, env.source, env.received_at)
        hint = self._hints.get(key) if key else None
        if key and hint is None:
            hint = key.decode(errors="replace").partition(":")[2]
            if len(self._hints) < 10_000:
                self._hints[key] = hint
        events = parser.parse(env, self.registry, hint)
        if not events:
            stats["misc"]["ignored"] += 1
            return []
        tp = (topic, partition)
        venue_trades = parser.venue_trades  # the plugin says whether its trades feed candles
        seen = self.dedup.seen
        new_instruments = self.registry.new_instruments
        problems: list[str] = []
        for event in events:
            if type(event) is FastPrice:
                if not event.checked:
                    try:
                        event.check()
                    except ValueError as exc:
                        problems.append(str(exc))
                        continue
            else:  # models validated themselves; only the time bound is configurable
                try:
                    limits.check_event_time(
                        event.event_time,  # type: ignore[union-attr]
                        event.received_at,  # type: ignore[union-attr]
                    )
                except ValueError as exc:
                    problems.append(str(exc))
                    continue
            rev = event.revision
            if seen(f"{event.event_id}:{rev}" if rev else event.event_id):
                stats["misc"]["duplicates"] += 1
                self.totals["duplicates"] += 1
                continue
            if type(event) is FastPrice:
                stats["events"]["price"] += 1
                wire = event.to_json()
                out.append(_new(Output, (self._prices, event.key, wire)))
                if new_instruments and event.native_symbol is not None:
                    self._announce(event.source, event.native_symbol, out)
                if venue_trades and event.kind == "trade":
                    self._feed_trade(event, wire, tp, offset, out)
            else:
                out.append(self._output(event))
        if problems and len(problems) < len(events):
            problems.insert(0, f"{len(problems)} of {len(events)} events")
        return problems

    def _output(self, event: AnyEvent) -> Output:
        kind: str = event.type  # type: ignore[union-attr]
        self.stats["events"][kind] += 1
        return Output(self._topic_of[kind], event.key, event.to_json())  # type: ignore[union-attr]

    def _feed_trade(
        self, event: FastPrice, wire: bytes, tp: TP, offset: int, out: list[Output]
    ) -> None:
        price, size, venue = event.price, event.size, event.source
        if price is None or size is None:
            return
        if event.market not in (None, "spot"):  # candles and consolidation are spot markets
            return
        trade_id = event.trade_id
        agg = trade_id is not None and trade_id.startswith("agg-")
        candles = self.candles
        if candles and (not agg or self._candles_from_agg):
            before_late, before_amended = candles.too_late, candles.amended
            before_revised = candles.revised
            emitted = candles.add(
                venue, event.symbol, event.event_time, price, size, event.received_at, tp,
                offset, price * size,
            )  # fmt: skip
            for candle in emitted:
                out.append(self._output(candle))
            late = candles.too_late - before_late
            if late:
                self.stats["misc"]["late_trades"] += late
                self.totals["late_trades"] += late
                log.info(
                    "trade later than the candle grace period dropped from candles",
                    extra={"venue": venue, "symbol": event.symbol, "trade_id": trade_id},
                )
            self.stats["misc"]["amended"] += candles.amended - before_amended
            self.stats["misc"]["revised"] += candles.revised - before_revised
        if self._by_asset is not None and not agg:
            key = event.asset_id or event.base
            out.append(_new(Output, (self._by_asset, key.encode(), wire)))

    def floor(self, tp: TP) -> int | None:
        """Oldest offset of ``tp`` still feeding open state (None: nothing held)."""
        return self.candles.floor(tp) if self.candles else None

    def commit_offset(self, tp: TP, next_offset: int) -> int:
        """The offset to commit for ``tp`` after processing everything before ``next_offset``."""
        floor = self.floor(tp)
        return next_offset if floor is None else min(floor, next_offset)


def _contract_reason(problems: list[str]) -> str:
    """One readable reason for the events of a record the contract refused."""
    if problems[0].endswith(" events"):
        head, rest = problems[0], problems[1:]
        return f"{head} broke the contract and were not published: " + "; ".join(rest[:3])
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"event breaks the contract: {problems[0]}{more}"
