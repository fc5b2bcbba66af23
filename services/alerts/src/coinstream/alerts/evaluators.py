"""Per-rule-type condition evaluators (pure): events and time in, condition changes out.

An evaluator keeps, per alert instance (its ``key`` labels: a symbol, a source, ...), whether
the rule's condition holds, with hysteresis: the condition starts when the value crosses the
threshold and ends only when it is back past the clear level (``rearm``/``resolve_*``,
``band_margin``). It answers with an ``Observation`` only when that changes, so a quiet event
costs a comparison and builds no text; the engine turns observations into
pending/firing/resolved transitions with the rule's ``for``/``resolve_for`` times. Evaluators
keep only JSON-serialisable state (``dump``/``load``) so it survives a restart.
"""

from __future__ import annotations

import math
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
    is_glob,
    patterns,
)
from coinstream.alerts.ticks import Tick, exact_price_of, price_of, size_of
from coinstream.alerts.windows import Activity, Extremes
from coinstream.schemas import FeedStatusEvent, SentimentEvent, ServiceHealthEvent

Key = tuple[tuple[str, str], ...]
Owns = Any  # Callable[[str], bool]: does this partition own the symbol?


@dataclass(frozen=True, slots=True)
class Observation:
    """The condition of one alert instance changed (``active``) at one moment."""

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
        return f"{value:.10g}"
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


def _dec(value: float, places: int = 4) -> Decimal:
    return Decimal(f"{value:.{places}f}") if math.isfinite(value) else Decimal(0)


class Evaluator:
    """Base: override the ``on_*`` methods the rule type needs."""

    def __init__(self, rule: AnyRule) -> None:
        self.rule = rule
        self.digest = rule.digest()  # saved with the state: a changed rule drops it

    def on_price(self, tick: Tick, now: float) -> Observation | None:
        return None

    def on_sentiment(self, event: SentimentEvent, now: float) -> Observation | None:
        return None

    def on_feed_status(self, event: FeedStatusEvent, now: float) -> Observation | None:
        return None

    def on_health(self, event: ServiceHealthEvent, now: float) -> Observation | None:
        return None

    def on_tick(self, now: float, owns: Owns = None) -> list[Observation]:
        return []

    def dump(self) -> dict[str, Any]:
        return {}

    def load(self, data: dict[str, Any]) -> None:
        return None


class PriceThreshold(Evaluator):
    """Crossing with hysteresis: active once the price is past the threshold, clear again only
    once it is back at the re-arm level (the clear band's edge)."""

    rule: PriceThresholdRule

    def __init__(self, rule: PriceThresholdRule) -> None:
        super().__init__(rule)
        self.above = rule.direction == "above"
        self.threshold = float(rule.threshold)
        self.clear = float(rule.rearm_level)
        self.state: dict[str, list[Any]] = {}  # symbol -> [active, last event time]

    def _beyond(self, v: float, level: float, exact: Decimal, tick: Tick) -> bool:
        """``v`` strictly past ``level`` in the rule's direction; when the floats are equal,
        decided in exact decimals."""
        if v == level:
            d = exact_price_of(tick, self.rule.field)
            if d is None:
                return False
            return d > exact if self.above else d < exact
        return v > level if self.above else v < level

    def on_price(self, tick: Tick, now: float) -> Observation | None:
        v = price_of(tick, self.rule.field)
        if v is None:
            return None
        st = self.state.get(tick.symbol)
        if st is None:
            st = self.state[tick.symbol] = [False, -math.inf]
        if tick.t < st[1]:
            return None  # an older event must not undo a newer crossing
        st[1] = tick.t
        r = self.rule
        if not st[0]:
            if self._beyond(v, self.threshold, r.threshold, tick):
                st[0] = True
                verb = "above" if self.above else "below"
                text = f"{tick.symbol} crossed {verb} {_fmt(r.threshold)}: {_fmt(v)}"
                return self._obs(tick.symbol, True, text, v)
        elif not self._beyond(v, self.clear, r.rearm_level, tick):
            st[0] = False
            text = f"{tick.symbol} back at {_fmt(v)} (cleared at {_fmt(r.rearm_level)})"
            return self._obs(tick.symbol, False, text, v)
        return None

    def _obs(self, symbol: str, active: bool, summary: str, v: float) -> Observation:
        return Observation(
            (("symbol", symbol),), symbol, active, summary, Decimal(repr(v)), self.rule.threshold
        )

    def dump(self) -> dict[str, Any]:
        return {"s": self.state}

    def load(self, data: dict[str, Any]) -> None:
        self.state = {k: [bool(a), float(t)] for k, (a, t) in data.get("s", {}).items()}


class PercentChange(Evaluator):
    """A move of at least ``percent`` within the sliding event-time ``window``; clear again
    once the move is under ``resolve_percent``.

    Up = latest vs the window's low, down = latest vs the window's high. Windows are bucketed
    at ``window / 60`` so out-of-order events count in their own time slot."""

    rule: PercentChangeRule

    def __init__(self, rule: PercentChangeRule) -> None:
        super().__init__(rule)
        self.resolution = rule.window / 60
        self.percent = float(rule.percent)
        self.clear = float(rule.clear_percent)
        self.windows: dict[str, Extremes] = {}
        self.active: set[str] = set()

    def _window(self, symbol: str) -> Extremes:
        w = self.windows.get(symbol)
        if w is None:
            w = self.windows[symbol] = Extremes(self.resolution, self.rule.window)
        return w

    def on_price(self, tick: Tick, now: float) -> Observation | None:
        price = price_of(tick)
        if price is None or price <= 0:
            return None
        w = self._window(tick.symbol)
        if not w.add(tick.t, price):
            return None
        last, lo, hi = w.latest, w.lo, w.hi
        if last is None or lo <= 0:
            return None
        up = (last - lo) / lo * 100
        down = (hi - last) / hi * 100
        direction = self.rule.direction
        move = up if direction == "up" else down if direction == "down" else max(up, down)
        symbol = tick.symbol
        if symbol not in self.active:
            if move < self.percent:
                return None
            self.active.add(symbol)
        elif move >= self.clear:
            return None
        else:
            self.active.discard(symbol)
        change = (
            up
            if direction == "up"
            else -down
            if direction == "down"
            else (up if up >= down else -down)
        )
        span = duration_text(self.rule.window)
        r = self.rule
        text = f"{symbol} moved {change:+.2f}% in {span} (limit {_fmt(r.percent)}%)"
        if symbol not in self.active:
            text += f"; back under {_fmt(r.clear_percent)}%"
        return Observation(
            (("symbol", symbol),), symbol, symbol in self.active, text, _dec(change), r.percent
        )

    def dump(self) -> dict[str, Any]:
        return {"w": {k: w.dump() for k, w in self.windows.items()}, "a": sorted(self.active)}

    def load(self, data: dict[str, Any]) -> None:
        for k, v in data.get("w", {}).items():
            self._window(k).load(v)
        self.active = set(data.get("a", []))


class Spike(Evaluator):
    """Volume or volatility in the recent ``window`` against the trailing ``baseline``;
    clear again at ``resolve_factor``."""

    rule: SpikeRule
    SLOTS = 10

    def __init__(self, rule: SpikeRule) -> None:
        super().__init__(rule)
        self.resolution = rule.window / self.SLOTS
        self.windows: dict[str, Activity] = {}
        self.active: set[str] = set()
        self.clear = rule.clear_factor

    def _window(self, symbol: str) -> Activity:
        w = self.windows.get(symbol)
        if w is None:
            w = self.windows[symbol] = Activity(
                self.resolution, self.rule.window, self.rule.baseline
            )
        return w

    def on_price(self, tick: Tick, now: float) -> Observation | None:
        r = self.rule
        volume_metric = r.metric == "volume"
        if volume_metric and (tick.kind != "trade" or tick.size is None):
            return None
        price = price_of(tick)
        if price is None or price <= 0:
            return None
        w = self._window(tick.symbol)
        if not w.add(tick.t, price, size_of(tick) or 0.0):
            return None
        if w.base_count < r.min_samples:
            return None
        ratio = w.volume_ratio() if volume_metric else w.volatility_ratio()
        if ratio is None or not math.isfinite(ratio):
            return None
        symbol = tick.symbol
        if symbol not in self.active:
            if ratio <= r.factor:
                return None
            self.active.add(symbol)
        elif ratio > self.clear:
            return None
        else:
            self.active.discard(symbol)
        text = (
            f"{symbol} {r.metric} {ratio:.1f}x its baseline "
            f"over {duration_text(r.window)} (limit {r.factor:g}x)"
        )
        active = symbol in self.active
        return Observation(
            (("symbol", symbol),), symbol, active, text, _dec(ratio), Decimal(str(r.factor))
        )

    def dump(self) -> dict[str, Any]:
        return {"w": {k: w.dump() for k, w in self.windows.items()}, "a": sorted(self.active)}

    def load(self, data: dict[str, Any]) -> None:
        for k, v in data.get("w", {}).items():
            self._window(k).load(v)
        self.active = set(data.get("a", []))


class Spread(Evaluator):
    """Cross-venue spread: (highest - lowest) / lowest of the venues' recent prices; clear
    again under ``resolve_percent``."""

    rule: SpreadRule

    def __init__(self, rule: SpreadRule) -> None:
        super().__init__(rule)
        self.latest: dict[str, dict[str, tuple[float, float]]] = {}
        self.active: set[str] = set()
        self.percent = float(rule.percent)
        self.clear = float(rule.clear_percent)

    def on_price(self, tick: Tick, now: float) -> Observation | None:
        if tick.kind in ("aggregate", "consolidated"):
            return None
        price = price_of(tick)
        if price is None or price <= 0:
            return None
        t = tick.t
        venues = self.latest.get(tick.symbol)
        if venues is None:
            venues = self.latest[tick.symbol] = {}
        prev = venues.get(tick.source)
        if prev is not None and prev[0] > t:
            return None
        venues[tick.source] = (t, price)
        oldest = t - self.rule.max_age
        lo = hi = price
        lo_venue = hi_venue = tick.source
        fresh = 0
        for venue, (vt, p) in venues.items():
            if vt >= oldest:
                fresh += 1
                if p < lo:
                    lo, lo_venue = p, venue
                if p > hi:
                    hi, hi_venue = p, venue
        if fresh < self.rule.min_venues:
            return None
        spread = (hi - lo) / lo * 100
        symbol = tick.symbol
        if symbol not in self.active:
            if spread < self.percent:
                return None
            self.active.add(symbol)
        elif spread >= self.clear:
            return None
        else:
            self.active.discard(symbol)
        text = (
            f"{symbol} spread {spread:.3f}% between {hi_venue} ({_fmt(hi)}) "
            f"and {lo_venue} ({_fmt(lo)})"
        )
        active = symbol in self.active
        return Observation(
            (("symbol", symbol),), symbol, active, text, _dec(spread), self.rule.percent
        )

    def dump(self) -> dict[str, Any]:
        return {"v": self.latest, "a": sorted(self.active)}  # shared: encoded at once

    def load(self, data: dict[str, Any]) -> None:
        self.latest = {
            s: {v: (float(t), float(p)) for v, (t, p) in vs.items()}
            for s, vs in data.get("v", {}).items()
        }
        self.active = set(data.get("a", []))


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
    """Band change (e.g. Fear -> Extreme Fear) or a change of ``points`` since the last alert,
    with separate state for every reporting source (CMC's and alternative.me's indices are
    different series).

    A band change counts once the value is ``band_margin`` points past the last value reported
    in the current band, so a value wobbling on a band boundary does not flap. These are
    one-off events: the condition holds for the report that changed and clears on the next
    report without a change."""

    rule: SentimentRule

    def __init__(self, rule: SentimentRule) -> None:
        super().__init__(rule)
        self.state: dict[str, dict[str, Any]] = {}
        self.subjects = patterns(rule.subjects)
        self.sources = patterns(rule.sources)

    def on_sentiment(self, event: SentimentEvent, now: float) -> Observation | None:
        r = self.rule
        if event.metric != r.metric or not self.subjects.match(event.subject):
            return None
        if not self.sources.match(event.source):
            return None
        key = f"{event.source}|{event.subject}|{event.metric}"
        t = _ts(event)
        band = event.classification or fear_greed_band(event.value)
        st = self.state.get(key)
        if st is None:  # the first report sets the reference
            self.state[key] = {
                "t": t,
                "band": band,
                "anchor": str(event.value),
                "ref": str(event.value),
                "active": False,
            }
            return None
        if t < st["t"]:
            return None  # older than this source's last report
        st["t"] = t
        value = event.value
        name = f"{event.subject} {event.metric} ({event.source})"
        threshold: Decimal | None
        if r.mode == "band_change":
            anchor = Decimal(st["anchor"])
            changed = band != st["band"] and abs(value - anchor) >= r.band_margin
            summary = f"{name} moved from {st['band']} to {band} ({_fmt(value)})"
            if changed:
                st["band"] = band
            if band == st["band"]:
                st["anchor"] = str(value)
            threshold = None
        else:
            assert r.points is not None
            delta = value - Decimal(st["ref"])
            changed = abs(delta) >= r.points
            if changed:
                st["ref"] = str(value)
            summary = f"{name} changed {delta:+} points to {_fmt(value)} ({band})"
            threshold = r.points
        if changed == st["active"] and not changed:
            return None
        st["active"] = changed
        if not changed:
            summary = f"{name} unchanged at {_fmt(value)} ({band})"
        key_labels = (
            ("subject", event.subject),
            ("metric", event.metric),
            ("source", event.source),
        )
        return Observation(key_labels, event.subject, changed, summary, value, threshold)

    def dump(self) -> dict[str, Any]:
        return self.state

    def load(self, data: dict[str, Any]) -> None:
        self.state = {k: dict(v) for k, v in data.items() if isinstance(v, dict) and "anchor" in v}


class FeedStatus(Evaluator):
    """Stale feeds, gaps and disconnects from ``coinstream.feed-status.v1``.

    Clears on a ``clear_statuses`` report or, with ``resolve_after``, when no bad status was
    reported for that long (a gap is reported once)."""

    rule: FeedStatusRule

    def __init__(self, rule: FeedStatusRule) -> None:
        super().__init__(rule)
        self.bad_since: dict[str, list[Any]] = {}  # "source|symbol" -> [last bad time, summary]
        self.sources = patterns(rule.sources)
        self.symbols = patterns(rule.symbols)

    def on_feed_status(self, event: FeedStatusEvent, now: float) -> Observation | None:
        r = self.rule
        if not self.sources.match(event.source):
            return None
        symbol = event.symbol or ""
        if event.symbol is not None and not self.symbols.match(symbol):
            return None
        if event.status in r.statuses:
            active = True
        elif event.status in r.clear_statuses:
            active = False
        else:
            return None
        key = f"{event.source}|{symbol}"
        was = key in self.bad_since
        subject = f"{event.source}:{symbol}" if symbol else event.source
        summary = f"{subject} feed {event.status}"
        if event.cause:
            summary += f": {event.cause}"
        if active:
            self.bad_since[key] = [now, summary]
        elif was:
            del self.bad_since[key]
        else:
            return None
        if active and was:
            return None  # still bad: nothing changed
        return Observation((("source", event.source), ("symbol", symbol)), subject, active, summary)

    def on_tick(self, now: float, owns: Owns = None) -> list[Observation]:
        limit = self.rule.resolve_after
        if limit is None:
            return []
        out = []
        for key, (last, summary) in list(self.bad_since.items()):
            if now - last >= limit:
                del self.bad_since[key]
                source, symbol = key.split("|", 1)
                subject = f"{source}:{symbol}" if symbol else source
                quiet = f"{summary} (no report for {duration_text(limit)})"
                out.append(
                    Observation((("source", source), ("symbol", symbol)), subject, False, quiet)
                )
        return out

    def dump(self) -> dict[str, Any]:
        return self.bad_since

    def load(self, data: dict[str, Any]) -> None:
        self.bad_since = {k: list(v) for k, v in data.items()}


class NoData(Evaluator):
    """No price event for a symbol within ``timeout`` (processing time).

    Symbols named exactly in the rule are expected from the start (by the partition that owns
    them); symbols matched by a pattern are watched once seen."""

    rule: NoDataRule

    def __init__(self, rule: NoDataRule) -> None:
        super().__init__(rule)
        self.last_seen: dict[str, float] = {}
        self.active: set[str] = set()
        self.expected = [] if rule.assets else [s for s in rule.symbols if not is_glob(s)]

    def on_price(self, tick: Tick, now: float) -> Observation | None:
        symbol = tick.symbol
        self.last_seen[symbol] = now
        if symbol in self.active:
            self.active.discard(symbol)
            return self._obs(symbol, False, f"data for {symbol} again", 0.0)
        return None

    def on_tick(self, now: float, owns: Owns = None) -> list[Observation]:
        for symbol in self.expected:
            if symbol not in self.last_seen and (owns is None or owns(symbol)):
                self.last_seen[symbol] = now
        out = []
        timeout = self.rule.timeout
        for symbol, seen in self.last_seen.items():
            silent = now - seen
            if silent > timeout and symbol not in self.active:
                self.active.add(symbol)
                text = f"no data for {symbol} for {duration_text(silent)}"
                out.append(self._obs(symbol, True, text, silent))
        return out

    def _obs(self, symbol: str, active: bool, summary: str, silent: float) -> Observation:
        return Observation(
            (("symbol", symbol),),
            symbol,
            active,
            summary,
            _dec(silent, 1),
            Decimal(str(self.rule.timeout)),
        )

    def dump(self) -> dict[str, Any]:
        return {"seen": self.last_seen, "a": sorted(self.active)}

    def load(self, data: dict[str, Any]) -> None:
        self.last_seen = {k: float(v) for k, v in data.get("seen", {}).items()}
        self.active = set(data.get("a", []))


class ServiceHealth(Evaluator):
    """A service instance reports itself degraded or unready."""

    rule: ServiceHealthRule

    def __init__(self, rule: ServiceHealthRule) -> None:
        super().__init__(rule)
        self.services = patterns(rule.services)
        self.active: set[str] = set()

    def on_health(self, event: ServiceHealthEvent, now: float) -> Observation | None:
        if not self.services.match(event.service):
            return None
        active = event.status in self.rule.statuses
        key = f"{event.service}|{event.instance}"
        if active == (key in self.active):
            return None
        if active:
            self.active.add(key)
        else:
            self.active.discard(key)
        failing = ", ".join(f"{k}: {v}" for k, v in event.checks.items() if "FAIL" in v)
        summary = f"{event.service} ({event.instance}) is {event.status}"
        if failing:
            summary += f" ({failing})"
        return Observation(
            (("service", event.service), ("instance", event.instance)),
            event.service,
            active,
            summary,
        )

    def dump(self) -> dict[str, Any]:
        return {"a": sorted(self.active)}

    def load(self, data: dict[str, Any]) -> None:
        self.active = set(data.get("a", []))


class ErrorRate(Evaluator):
    """More than ``threshold`` errors of a source within the sliding ``window``; clear again
    at ``resolve_threshold`` or fewer.

    Errors are feed-status events with an error status, plus increases of the matching counters
    of ``ServiceHealthEvent`` reports."""

    rule: ErrorRateRule

    def __init__(self, rule: ErrorRateRule) -> None:
        super().__init__(rule)
        self.errors: dict[str, list[tuple[float, int]]] = {}
        self.counters: dict[str, int] = {}
        self.active: set[str] = set()
        self.clock = -math.inf
        self.sources = patterns(rule.sources)
        self.counter_names = patterns(rule.counters)

    def _add(self, source: str, t: float, n: int) -> None:
        if n > 0:
            self.errors.setdefault(source, []).append((t, n))

    def on_feed_status(self, event: FeedStatusEvent, now: float) -> Observation | None:
        if event.status not in self.rule.statuses or not self.sources.match(event.source):
            return None
        t = _ts(event)
        self._add(event.source, t, 1)
        return self._observe(event.source, max(t, now))

    def on_health(self, event: ServiceHealthEvent, now: float) -> Observation | None:
        r = self.rule
        if not r.counters or not self.sources.match(event.service):
            return None
        total = sum(v for k, v in event.counters.items() if self.counter_names.match(k))
        ckey = f"{event.service}/{event.instance}"
        prev = self.counters.get(ckey)
        self.counters[ckey] = total
        if prev is not None and total >= prev:
            self._add(event.service, _ts(event), total - prev)
        return self._observe(event.service, max(_ts(event), now))

    def on_tick(self, now: float, owns: Owns = None) -> list[Observation]:
        out = []
        for source in list(self.errors):
            obs = self._observe(source, now)
            if obs is not None:
                out.append(obs)
            if not self.errors.get(source) and source not in self.active:
                self.errors.pop(source, None)
        return out

    def _observe(self, source: str, now: float) -> Observation | None:
        self.clock = max(self.clock, now)
        start = self.clock - self.rule.window
        kept = [(t, n) for t, n in self.errors.get(source, []) if t > start]
        self.errors[source] = kept
        count = sum(n for _, n in kept)
        r = self.rule
        if source not in self.active:
            if count <= r.threshold:
                return None
            self.active.add(source)
        elif count > r.clear_threshold:
            return None
        else:
            self.active.discard(source)
        summary = f"{source}: {count} errors in {duration_text(r.window)} (limit {r.threshold})"
        return Observation(
            (("source", source),),
            source,
            source in self.active,
            summary,
            Decimal(count),
            Decimal(r.threshold),
        )

    def dump(self) -> dict[str, Any]:
        return {"errors": self.errors, "counters": self.counters, "a": sorted(self.active)}

    def load(self, data: dict[str, Any]) -> None:
        self.errors = {k: [(t, n) for t, n in v] for k, v in data.get("errors", {}).items()}
        self.counters = dict(data.get("counters", {}))
        self.active = set(data.get("a", []))


def duration_text(seconds: float) -> str:
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

PRICE_TYPES = frozenset({"price_threshold", "percent_change", "spike", "spread", "no_data"})
"""Rule types that read ``prices.v1``; the others read sentiment or feed status."""


def evaluator_for(rule: AnyRule) -> Evaluator:
    return _EVALUATORS[rule.type](rule)  # type: ignore[arg-type]
