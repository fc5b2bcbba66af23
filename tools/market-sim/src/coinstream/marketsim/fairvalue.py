"""The price model: one fair value per asset, and how each source sees it.

Pure (no I/O, no clock reads: every function takes the time it needs), so it is testable
without servers. ``market.py`` drives it; venue and aggregator plugins only render it.

- **Fair value** (``FairValue``): one geometric random walk per asset (BTC, ETH, ...), in the
  reference quote class (USDT; aggregators quote it as USD). It remembers a short path of
  recent values so that lagging observers can look back.
- **Quote classes** (``PEG_BASIS``): an instrument quoted in another class trades at a tiny peg
  basis to the reference (``BTC-USD`` about 1.5 bp above ``BTC-USDT``).
- **Venues** (``VenueProfile``, ``venue_offset``): each venue instrument follows the market's
  price with its own constant basis (drawn once per venue and instrument from the seed), a
  slow deviation re-drawn every ``cadence_s`` (interpolated between draws), per-print jitter,
  and a feed latency. Offsets are a deterministic function of (seed, venue, instrument, time),
  so a trade renders the same on the stream and in the REST history, in every connection.
- **Divergence** (``Divergences``): a scripted extra offset of one venue (or one venue
  instrument) from a given time on, for spread alerts; kept as change points so history
  renders trades with the divergence that was in effect when they happened.
- **Aggregators** (``AggregatorProfile``, ``FairValue.mean``): CoinGecko, CoinMarketCap and CMC
  DEX quote a delayed, smoothed fair value: its time-weighted mean over
  ``[t - delay - window, t - delay]``.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist

REFERENCE_QUOTE = "USDT"
PEG_BASIS: dict[str, float] = {"USD": 0.00015}
"""Basis of each quote class over the reference class (USDT): ``BTC-USD`` = fair x 1.00015."""
BP = 1e-4
MAX_DIVERGENCE_PCT = 1000.0
_STANDARD = NormalDist()


def peg_basis(quote: str) -> float:
    """The basis of quote class ``quote`` over the reference class (0 for unknown classes)."""
    return PEG_BASIS.get(quote, 0.0)


class FairValue:
    """The fair value of one asset: its current value and the path of recent values.

    The path is a list of change points ``(t, value)`` (``t`` in UNIX seconds, ascending).
    Points closer than ``resolution_s`` are merged (the later value wins) and points older
    than ``horizon_s`` are dropped, so memory stays bounded at any trade rate.
    """

    def __init__(
        self,
        opening: Decimal,
        t: float = 0.0,
        horizon_s: float = 600.0,
        resolution_s: float = 0.02,
    ) -> None:
        if opening <= 0:
            raise ValueError(f"an opening fair value must be positive, got {opening}")
        self.opening = opening
        self.value = opening
        self.horizon_s = horizon_s
        self.resolution_s = resolution_s
        self._path: deque[tuple[float, Decimal]] = deque([(t, opening)])

    def set(self, value: Decimal, t: float) -> None:
        """The fair value is ``value`` from time ``t`` on."""
        if value <= 0:
            raise ValueError(f"a fair value must be positive, got {value}")
        self.value = value
        path = self._path
        last_t = path[-1][0]
        t = max(t, last_t)  # a clock that went back: never rewrite the past
        if len(path) > 1 and t - last_t < self.resolution_s:
            path[-1] = (last_t, value)
        else:
            path.append((t, value))
        while len(path) > 2 and path[1][0] < t - self.horizon_s:
            path.popleft()

    def move(self, log_return: float, t: float) -> Decimal:
        """Apply one step of the random walk (a log return); the new value."""
        self.set(self.value * Decimal(repr(math.exp(log_return))), t)
        return self.value

    def at(self, t: float) -> Decimal:
        """The fair value at time ``t`` (the oldest value remembered, for earlier times)."""
        for pt, value in reversed(self._path):
            if pt <= t:
                return value
        return self._path[0][1]

    def mean(self, start: float, end: float) -> Decimal:
        """The time-weighted mean over ``[start, end]`` (the value at ``end`` if empty)."""
        if end <= start:
            return self.at(end)
        pieces: list[tuple[float, Decimal]] = []  # (duration, value), newest first
        right = end
        for pt, value in reversed(self._path):
            if pt >= right:
                continue
            left = max(pt, start)
            pieces.append((right - left, value))
            right = left
            if right <= start:
                break
        if right > start:  # before the oldest point: its value
            pieces.append((right - start, self._path[0][1]))
        values = {v for _, v in pieces}
        if len(values) == 1:
            return values.pop()  # exact: a quiet market quotes its fair value to the digit
        total = sum(d * float(v) for d, v in pieces) / (end - start)
        return Decimal(repr(total))


@dataclass(frozen=True, slots=True)
class AggregatorProfile:
    """How an aggregator follows the fair value: ``delay_s`` behind, averaged over
    ``window_s`` (both multiplied by the market's ``aggregator_lag``)."""

    delay_s: float
    window_s: float

    def quote(self, fair: FairValue, t: float, scale: float = 1.0) -> Decimal:
        """The aggregator's value of ``fair`` at time ``t``."""
        end = t - self.delay_s * scale
        return fair.mean(end - self.window_s * scale, end)


@dataclass(frozen=True, slots=True)
class VenueProfile:
    """How one venue tracks the market (all in basis points and seconds).

    ``basis_bp``: each instrument's constant basis is drawn from ``[-basis_bp, basis_bp]``;
    ``drift_bp``: standard deviation of the slow deviation, re-drawn every ``cadence_s``;
    ``jitter_bp``: standard deviation of the per-print noise;
    ``latency_s``: how far the venue's feed runs behind the market.
    """

    basis_bp: float = 3.0
    drift_bp: float = 1.5
    cadence_s: float = 1.0
    jitter_bp: float = 1.0
    latency_s: float = 0.05


def _normal(*key: object) -> float:
    """A standard normal draw that is a pure function of ``key`` (stable across processes)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return _STANDARD.inv_cdf((int.from_bytes(digest, "big") + 0.5) / 2.0**64)


def _uniform(*key: object) -> float:
    """A draw from [-1, 1) that is a pure function of ``key``."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**63 - 1.0


def venue_basis(seed: int, venue: str, symbol: str, profile: VenueProfile) -> float:
    """The constant basis of ``venue``'s ``symbol`` (a fraction, e.g. 0.0002 = 2 bp)."""
    return profile.basis_bp * BP * _uniform(seed, venue, symbol, "basis")


def venue_offset(seed: int, venue: str, symbol: str, profile: VenueProfile, t: float) -> float:
    """The relative offset of ``venue``'s ``symbol`` from the market price at time ``t``:
    basis + interpolated slow deviation + jitter (a fraction)."""
    cadence = max(profile.cadence_s, 1e-3)
    slot = t / cadence
    k = math.floor(slot)
    frac = slot - k
    drift = (1 - frac) * _normal(seed, venue, symbol, "drift", k) + frac * _normal(
        seed, venue, symbol, "drift", k + 1
    )
    jitter = _normal(seed, venue, symbol, "jitter", repr(t))
    return (
        venue_basis(seed, venue, symbol, profile)
        + profile.drift_bp * BP * drift
        + profile.jitter_bp * BP * jitter
    )


@dataclass(frozen=True, slots=True)
class Divergence:
    """From ``since`` on, ``venue``'s prices (of ``symbol``, or all) are ``percent`` away."""

    venue: str
    symbol: str | None
    percent: float
    since: float


class Divergences:
    """Scripted divergences as change points, so the past renders as it was."""

    def __init__(self) -> None:
        self._changes: list[Divergence] = []

    def set(self, venue: str, percent: float | None, t: float, symbol: str | None = None) -> None:
        """Diverge ``venue`` (``symbol`` only, if given) by ``percent`` from ``t`` on; ``None``
        or 0 clears it (clearing a whole venue also clears its per-instrument divergences)."""
        pct = float(percent or 0.0)
        if not -100 < pct <= MAX_DIVERGENCE_PCT:
            raise ValueError(
                f"a divergence must be a percent above -100 and at most {MAX_DIVERGENCE_PCT:g}, "
                f"got {percent}"
            )
        if symbol is None and pct == 0:
            for d in self.active(t):
                if d.venue == venue and d.symbol is not None:
                    self._changes.append(Divergence(venue, d.symbol, 0.0, t))
        self._changes.append(Divergence(venue, symbol, pct, t))

    def percent(self, venue: str, symbol: str, t: float) -> float:
        """The divergence of ``venue``'s ``symbol`` at time ``t``: its own if set, else the
        whole venue's."""
        latest = self._latest(t)
        own = latest.get((venue, symbol))
        if own is not None and own.percent != 0:
            return own.percent
        whole = latest.get((venue, None))
        return whole.percent if whole is not None else 0.0

    def active(self, t: float) -> list[Divergence]:
        """The divergences in effect at ``t`` (non-zero), one per venue and scope."""
        return [d for d in self._latest(t).values() if d.percent != 0]

    def _latest(self, t: float) -> dict[tuple[str, str | None], Divergence]:
        latest: dict[tuple[str, str | None], Divergence] = {}
        for d in self._changes:
            if d.since <= t:
                latest[(d.venue, d.symbol)] = d
        return latest
