"""Per-rule-type condition evaluators (pure): events and time in, observations out.

An evaluator sees the events its rule type cares about and answers with ``Observation``s: for
one alert instance (identified by its ``key`` labels), is the condition active right now? The
engine turns observations into pending/firing/resolved transitions. Evaluators keep only
JSON-serialisable state (``dump``/``load``) so it survives a restart.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
import statistics
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from coinstream.alerts.rules import (
    AnyRule,
    ErrorRateRule,
    FeedStatusRule,
    NoDataRule,
    PercentChangeRule,
    PriceThresholdRule,
    SentimentRule,
    ServiceHealthRule,
    SpikeRule,
    SpreadRule,
)
from coinstream.alerts.windows import BucketWindow
from coinstream.schemas import FeedStatusEvent, PriceEvent, SentimentEvent, ServiceHealthEvent

Key = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Observation:
    """The condition of one alert instance at one moment."""

    key: Key
    subject: str
    active: bool
    summary: str
    value: Decimal | None = None
    threshold: Decimal | None = None


def _ts(event: Any) -> float:
    return float(event.event_time.timestamp())


def _fmt(value: Decimal | float) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


def _glob(patterns: list[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def price_of(event: PriceEvent, field: str = "price") -> Decimal | None:
    """The rule's price field, falling back to the mid of bid/ask for quotes."""
    if field == "bid":
        return event.bid
    if field == "ask":
        return event.ask
    if field == "price" and event.price is not None:
        return event.price
    if event.bid is not None and event.ask is not None:
        return (event.bid + event.ask) / 2
    return event.price


class Evaluator:
    """Base: override the ``on_*`` methods the rule type needs."""

    def __init__(self, rule: AnyRule) -> None:
        self.rule = rule

    def on_price(self, event: PriceEvent, now: float) -> list[Observation]:
        return []

    def on_sentiment(self, event: SentimentEvent, now: float) -> list[Observation]:
        return []

    def on_feed_status(self, event: FeedStatusEvent, now: float) -> list[Observation]:
        return []

    def on_health(self, event: ServiceHealthEvent, now: float) -> list[Observation]:
        return []

    def on_tick(self, now: float) -> list[Observation]:
        return []

    def dump(self) -> dict[str, Any]:
        return {}

    def load(self, data: dict[str, Any]) -> None:
        return None


class PriceThreshold(Evaluator):
    """Crossing with hysteresis: fires when the price crosses the threshold, re-arms (and
    resolves) only after it moved back past ``rearm_level``."""

    rule: PriceThresholdRule

    def __init__(self, rule: PriceThresholdRule) -> None:
        super().__init__(rule)
        self.armed: dict[str, bool] = {}
        self.last_t: dict[str, float] = {}

    def on_price(self, event: PriceEvent, now: float) -> list[Observation]:
        r = self.rule
        if not r.matches(event.symbol, event.base, event.source):
            return []
        price = price_of(event, r.field)
        if price is None:
            return []
        t = _ts(event)
        if t < self.last_t.get(event.symbol, -math.inf):
            return []  # an older event must not undo a newer crossing
        self.last_t[event.symbol] = t
        armed = self.armed.get(event.symbol, True)
        above = r.direction == "above"
        if armed and (price > r.threshold if above else price < r.threshold):
            armed = False
        elif not armed and (price <= r.rearm_level if above else price >= r.rearm_level):
            armed = True
        self.armed[event.symbol] = armed
        verb = "above" if above else "below"
        summary = f"{event.symbol} crossed {verb} {_fmt(r.threshold)}: {_fmt(price)}"
        if armed:
            summary = f"{event.symbol} back at {_fmt(price)} (re-armed at {_fmt(r.rearm_level)})"
        return [
            Observation(
                (("symbol", event.symbol),),
                event.symbol,
                not armed,
                summary,
                price,
                r.threshold,
            )
        ]

    def dump(self) -> dict[str, Any]:
        return {"armed": self.armed, "last_t": self.last_t}

    def load(self, data: dict[str, Any]) -> None:
        self.armed = dict(data.get("armed", {}))
        self.last_t = dict(data.get("last_t", {}))


class PercentChange(Evaluator):
    """Move of at least ``percent`` within the sliding event-time ``window``.

    Up = latest vs the window's low, down = latest vs the window's high. Windows are bucketed at
    ``window / 60`` so out-of-order events count in their own time slot.
    """

    rule: PercentChangeRule

    def __init__(self, rule: PercentChangeRule) -> None:
        super().__init__(rule)
        self.resolution = rule.window / 60
        self.windows: dict[str, BucketWindow] = {}

    def _window(self, symbol: str) -> BucketWindow:
        w = self.windows.get(symbol)
        if w is None:
            w = self.windows[symbol] = BucketWindow(
                self.resolution, self.rule.window + 2 * self.resolution
            )
        return w

    def on_price(self, event: PriceEvent, now: float) -> list[Observation]:
        r = self.rule
        if not r.matches(event.symbol, event.base, event.source):
            return []
        price = price_of(event)
        if price is None or price <= 0:
            return []
        w = self._window(event.symbol)
        if not w.add(_ts(event), float(price)):
            return []
        inside = w.between(w.watermark - r.window, w.watermark)
        latest = w.latest()
        if not inside or latest is None:
            return []
        lo = min(b.lo for _, b in inside)
        hi = max(b.hi for _, b in inside)
        last = latest.last_v
        up = (last - lo) / lo * 100
        down = (hi - last) / hi * 100
        limit = float(r.percent)
        if r.direction == "up":
            change, active = up, up >= limit
        elif r.direction == "down":
            change, active = -down, down >= limit
        else:
            change = up if up >= down else -down
            active = max(up, down) >= limit
        span = _duration_text(r.window)
        summary = f"{event.symbol} moved {change:+.2f}% in {span} (limit {_fmt(r.percent)}%)"
        return [
            Observation(
                (("symbol", event.symbol),),
                event.symbol,
                active,
                summary,
                Decimal(f"{change:.4f}"),
                r.percent,
            )
        ]

    def dump(self) -> dict[str, Any]:
        return {k: w.dump() for k, w in self.windows.items()}

    def load(self, data: dict[str, Any]) -> None:
        for k, v in data.items():
            self._window(k).load(v)


class Spike(Evaluator):
    """Volume or volatility in the recent ``window`` against the trailing ``baseline``."""

    rule: SpikeRule
    SLOTS = 10

    def __init__(self, rule: SpikeRule) -> None:
        super().__init__(rule)
        self.resolution = rule.window / self.SLOTS
        self.windows: dict[str, BucketWindow] = {}

    def _window(self, symbol: str) -> BucketWindow:
        w = self.windows.get(symbol)
        if w is None:
            span = self.rule.window + self.rule.baseline + 2 * self.resolution
            w = self.windows[symbol] = BucketWindow(self.resolution, span)
        return w

    def on_price(self, event: PriceEvent, now: float) -> list[Observation]:
        r = self.rule
        if not r.matches(event.symbol, event.base, event.source):
            return []
        price = price_of(event)
        if r.metric == "volume" and (event.kind != "trade" or event.size is None):
            return []
        if price is None or price <= 0:
            return []
        w = self._window(event.symbol)
        volume = float(event.size) if event.size is not None else 0.0
        if not w.add(_ts(event), float(price), volume):
            return []
        end = w.watermark
        recent = w.between(end - r.window, end)
        baseline = w.between(end - r.window - r.baseline, end - r.window)
        baseline = [(s, b) for s, b in baseline if s < (recent[0][0] if recent else w.slot(end))]
        if sum(b.count for _, b in baseline) < r.min_samples:
            return []
        if r.metric == "volume":
            now_value = sum(b.volume for _, b in recent)
            # per-window average over the part of the baseline that has data
            first_recent = recent[0][0] if recent else w.slot(end)
            covered = (first_recent - baseline[0][0]) * self.resolution
            base_value = sum(b.volume for _, b in baseline) * r.window / max(covered, r.window)
            what = "volume"
        else:
            now_value = _volatility(recent)
            base_value = _volatility(baseline)
            what = "volatility"
        if base_value <= 0 or not math.isfinite(now_value):
            return []
        ratio = now_value / base_value
        summary = (
            f"{event.symbol} {what} {ratio:.1f}x its baseline "
            f"over {_duration_text(r.window)} (limit {r.factor:g}x)"
        )
        return [
            Observation(
                (("symbol", event.symbol),),
                event.symbol,
                ratio > r.factor,
                summary,
                Decimal(f"{ratio:.4f}"),
                Decimal(str(r.factor)),
            )
        ]

    def dump(self) -> dict[str, Any]:
        return {k: w.dump() for k, w in self.windows.items()}

    def load(self, data: dict[str, Any]) -> None:
        for k, v in data.items():
            self._window(k).load(v)


def _volatility(buckets: list[tuple[int, Any]]) -> float:
    closes = [b.last_v for _, b in buckets]
    returns = [math.log(b / a) for a, b in itertools.pairwise(closes) if a > 0]
    if len(returns) < 2:
        return math.nan
    return statistics.pstdev(returns)


class Spread(Evaluator):
    """Cross-venue spread: (highest - lowest) / lowest of the venues' recent prices."""

    rule: SpreadRule

    def __init__(self, rule: SpreadRule) -> None:
        super().__init__(rule)
        self.latest: dict[str, dict[str, tuple[float, Decimal]]] = {}

    def on_price(self, event: PriceEvent, now: float) -> list[Observation]:
        r = self.rule
        if event.kind in ("aggregate", "consolidated"):
            return []
        if not r.matches(event.symbol, event.base, event.source):
            return []
        price = price_of(event)
        if price is None or price <= 0:
            return []
        t = _ts(event)
        venues = self.latest.setdefault(event.symbol, {})
        prev = venues.get(event.source)
        if prev is not None and prev[0] > t:
            return []
        venues[event.source] = (t, price)
        fresh = {v: p for v, (vt, p) in venues.items() if vt >= t - r.max_age}
        if len(fresh) < r.min_venues:
            return []
        lo_venue = min(fresh, key=lambda v: fresh[v])
        hi_venue = max(fresh, key=lambda v: fresh[v])
        spread = (fresh[hi_venue] - fresh[lo_venue]) / fresh[lo_venue] * 100
        summary = (
            f"{event.symbol} spread {spread:.3f}% between {hi_venue} ({_fmt(fresh[hi_venue])}) "
            f"and {lo_venue} ({_fmt(fresh[lo_venue])})"
        )
        return [
            Observation(
                (("symbol", event.symbol),),
                event.symbol,
                spread >= r.percent,
                summary,
                spread.quantize(Decimal("0.0001")),
                r.percent,
            )
        ]

    def dump(self) -> dict[str, Any]:
        return {
            s: {v: [t, str(p)] for v, (t, p) in venues.items()} for s, venues in self.latest.items()
        }

    def load(self, data: dict[str, Any]) -> None:
        self.latest = {
            s: {v: (float(t), Decimal(p)) for v, (t, p) in venues.items()}
            for s, venues in data.items()
        }


FEAR_GREED_BANDS: tuple[tuple[int, str], ...] = (
    (24, "Extreme Fear"),
    (44, "Fear"),
    (55, "Neutral"),
    (75, "Greed"),
    (100, "Extreme Greed"),
)


def fear_greed_band(value: Decimal) -> str:
    """The alternative.me band of a Fear & Greed value (0-24 Extreme Fear ... 76-100)."""
    for upper, name in FEAR_GREED_BANDS:
        if value <= upper:
            return name
    return FEAR_GREED_BANDS[-1][1]


class Sentiment(Evaluator):
    """Band change (e.g. Fear -> Extreme Fear) or a change of ``points`` since the last alert.

    These are one-off events: the alert fires on the change and resolves on the next report
    without a change.
    """

    rule: SentimentRule

    def __init__(self, rule: SentimentRule) -> None:
        super().__init__(rule)
        self.state: dict[str, dict[str, Any]] = {}

    def on_sentiment(self, event: SentimentEvent, now: float) -> list[Observation]:
        r = self.rule
        if event.metric != r.metric or not _glob(r.subjects, event.subject):
            return []
        key = event.subject
        t = _ts(event)
        band = event.classification or fear_greed_band(event.value)
        st = self.state.get(key)
        self.state[key] = new = {"t": t, "value": str(event.value), "band": band}
        if st is None:
            new["ref"] = str(event.value)
            return []
        if t < st["t"]:
            self.state[key] = st
            return []
        name = f"{event.subject} {event.metric}"
        if r.mode == "band_change":
            new["ref"] = str(event.value)
            active = band != st["band"]
            summary = f"{name} moved from {st['band']} to {band} ({_fmt(event.value)})"
            if not active:
                summary = f"{name} still {band} ({_fmt(event.value)})"
            threshold = None
        else:
            ref = Decimal(st["ref"])
            delta = event.value - ref
            assert r.points is not None
            active = abs(delta) >= r.points
            new["ref"] = str(event.value) if active else st["ref"]
            summary = f"{name} changed {delta:+} points to {_fmt(event.value)} ({band})"
            threshold = r.points
        return [
            Observation(
                (("subject", event.subject), ("metric", event.metric)),
                event.subject,
                active,
                summary,
                event.value,
                threshold,
            )
        ]

    def dump(self) -> dict[str, Any]:
        return self.state

    def load(self, data: dict[str, Any]) -> None:
        self.state = dict(data)


class FeedStatus(Evaluator):
    """Stale feeds, gaps and disconnects from ``coinstream.feed-status.v1``.

    Clears on a ``clear_statuses`` report or, with ``resolve_after``, when no bad status was
    reported for that long (a gap is reported once).
    """

    rule: FeedStatusRule

    def __init__(self, rule: FeedStatusRule) -> None:
        super().__init__(rule)
        self.bad_since: dict[str, list[Any]] = {}  # "source|symbol" -> [last bad time, summary]

    def on_feed_status(self, event: FeedStatusEvent, now: float) -> list[Observation]:
        r = self.rule
        if not _glob(r.sources, event.source):
            return []
        symbol = event.symbol or ""
        if event.symbol is not None and not _glob(r.symbols, symbol):
            return []
        if event.status in r.statuses:
            active = True
        elif event.status in r.clear_statuses:
            active = False
        else:
            return []
        subject = f"{event.source}:{symbol}" if symbol else event.source
        summary = f"{subject} feed {event.status}"
        if event.cause:
            summary += f": {event.cause}"
        key = f"{event.source}|{symbol}"
        if active:
            self.bad_since[key] = [now, summary]
        else:
            self.bad_since.pop(key, None)
        return [
            Observation((("source", event.source), ("symbol", symbol)), subject, active, summary)
        ]

    def on_tick(self, now: float) -> list[Observation]:
        limit = self.rule.resolve_after
        if limit is None:
            return []
        out = []
        for key, (last, summary) in list(self.bad_since.items()):
            if now - last >= limit:
                del self.bad_since[key]
                source, symbol = key.split("|", 1)
                subject = f"{source}:{symbol}" if symbol else source
                quiet = f"{summary} (no report for {_duration_text(limit)})"
                key_labels = (("source", source), ("symbol", symbol))
                out.append(Observation(key_labels, subject, False, quiet))
        return out

    def dump(self) -> dict[str, Any]:
        return self.bad_since

    def load(self, data: dict[str, Any]) -> None:
        self.bad_since = {k: list(v) for k, v in data.items()}


class NoData(Evaluator):
    """No price event for a symbol within ``timeout`` (processing time).

    Symbols named exactly in the rule are expected from the start; symbols matched by a pattern
    are watched once seen.
    """

    rule: NoDataRule

    def __init__(self, rule: NoDataRule) -> None:
        super().__init__(rule)
        self.last_seen: dict[str, float] = {}

    def on_price(self, event: PriceEvent, now: float) -> list[Observation]:
        if not self.rule.matches(event.symbol, event.base, event.source):
            return []
        self.last_seen[event.symbol] = now
        return [self._observe(event.symbol, now)]

    def on_tick(self, now: float) -> list[Observation]:
        if not self.rule.assets:
            for symbol in self.rule.symbols:
                if not any(c in symbol for c in "*?[") and symbol not in self.last_seen:
                    self.last_seen[symbol] = now
        return [self._observe(s, now) for s in self.last_seen]

    def _observe(self, symbol: str, now: float) -> Observation:
        silent = now - self.last_seen[symbol]
        active = silent > self.rule.timeout
        summary = f"no data for {symbol} for {_duration_text(silent)}"
        if not active:
            summary = f"data for {symbol} again"
        return Observation(
            (("symbol", symbol),),
            symbol,
            active,
            summary,
            Decimal(f"{silent:.1f}"),
            Decimal(str(self.rule.timeout)),
        )

    def dump(self) -> dict[str, Any]:
        return self.last_seen

    def load(self, data: dict[str, Any]) -> None:
        self.last_seen = dict(data)


class ServiceHealth(Evaluator):
    """A service instance reports itself degraded or unready."""

    rule: ServiceHealthRule

    def on_health(self, event: ServiceHealthEvent, now: float) -> list[Observation]:
        r = self.rule
        if not _glob(r.services, event.service):
            return []
        active = event.status in r.statuses
        failing = ", ".join(f"{k}: {v}" for k, v in event.checks.items() if "FAIL" in v)
        summary = f"{event.service} ({event.instance}) is {event.status}"
        if failing:
            summary += f" ({failing})"
        return [
            Observation(
                (("service", event.service), ("instance", event.instance)),
                event.service,
                active,
                summary,
            )
        ]


class ErrorRate(Evaluator):
    """More than ``threshold`` errors of a source within the sliding ``window``.

    Errors are feed-status events with an error status, plus increases of the matching counters
    of ``ServiceHealthEvent`` reports.
    """

    rule: ErrorRateRule

    def __init__(self, rule: ErrorRateRule) -> None:
        super().__init__(rule)
        self.errors: dict[str, list[tuple[float, int]]] = {}
        self.counters: dict[str, int] = {}
        self.clock = -math.inf

    def _add(self, source: str, t: float, n: int) -> None:
        if n > 0:
            self.errors.setdefault(source, []).append((t, n))

    def on_feed_status(self, event: FeedStatusEvent, now: float) -> list[Observation]:
        r = self.rule
        if event.status not in r.statuses or not _glob(r.sources, event.source):
            return []
        t = _ts(event)
        self._add(event.source, t, 1)
        return [self._observe(event.source, max(t, now))]

    def on_health(self, event: ServiceHealthEvent, now: float) -> list[Observation]:
        r = self.rule
        if not r.counters or not _glob(r.sources, event.service):
            return []
        total = sum(v for k, v in event.counters.items() if _glob(r.counters, k))
        ckey = f"{event.service}/{event.instance}"
        prev = self.counters.get(ckey)
        self.counters[ckey] = total
        if prev is not None and total >= prev:
            self._add(event.service, _ts(event), total - prev)
        return [self._observe(event.service, max(_ts(event), now))]

    def on_tick(self, now: float) -> list[Observation]:
        return [self._observe(s, now) for s in list(self.errors)]

    def _observe(self, source: str, now: float) -> Observation:
        self.clock = max(self.clock, now)
        start = self.clock - self.rule.window
        kept = [(t, n) for t, n in self.errors.get(source, []) if t > start]
        self.errors[source] = kept
        count = sum(n for _, n in kept)
        summary = (
            f"{source}: {count} errors in {_duration_text(self.rule.window)} "
            f"(limit {self.rule.threshold})"
        )
        return Observation(
            (("source", source),),
            source,
            count > self.rule.threshold,
            summary,
            Decimal(count),
            Decimal(self.rule.threshold),
        )

    def dump(self) -> dict[str, Any]:
        return {"errors": self.errors, "counters": self.counters}

    def load(self, data: dict[str, Any]) -> None:
        self.errors = {k: [(t, n) for t, n in v] for k, v in data.get("errors", {}).items()}
        self.counters = dict(data.get("counters", {}))


def _duration_text(seconds: float) -> str:
    seconds = float(seconds)
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s" if seconds == int(seconds) else f"{seconds:.1f}s"


_EVALUATORS: dict[str, type[Evaluator]] = {
    "price_threshold": PriceThreshold,
    "percent_change": PercentChange,
    "spike": Spike,
    "spread": Spread,
    "sentiment": Sentiment,
    "feed_status": FeedStatus,
    "no_data": NoData,
    "service_health": ServiceHealth,
    "error_rate": ErrorRate,
}


def evaluator_for(rule: AnyRule) -> Evaluator:
    return _EVALUATORS[rule.type](rule)  # type: ignore[arg-type]
