"""The shape every venue plugin has: its settings, shard plans, frame classification, pings.

A venue is one module (cryptofeed keeps one module per exchange): a ``VenueSettings`` subclass
with its defaults and a ``VenueProtocol`` subclass with what the venue trades and how it
spells symbols (``bases``, ``quotes``, ``native``, ``canonical``), its subscriptions, frame
classification, and optional REST trade history. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from coinstream.ingest_ws.errors import ConfigError
from coinstream.ingest_ws.frames import Frame, Route, StreamId
from coinstream.ingest_ws.symbols import CANONICAL, SymbolMap, env_name


class VenueSettings(BaseModel):
    """Connection, limits and liveness settings of one venue (defaults differ per venue)."""

    enabled: bool = True
    url: str = ""
    symbols: list[str] = Field(default_factory=list, description="Canonical, e.g. BTC-USDT")
    channels: list[str] = Field(default_factory=list)
    extra_symbols: list[str] = Field(
        default_factory=list,
        description="Canonical symbols the venue lists that are missing from the built-in catalogue",
    )
    # venue limits
    max_streams_per_connection: int = Field(
        200, gt=0, description="Streams (symbol x channel) per connection; more shard out"
    )
    control_msgs_per_s: float = Field(
        4.0, gt=0, description="Subscribe/ping messages per second we send (per venue)"
    )
    control_burst: int = Field(4, gt=0)
    connect_attempts: int = Field(
        20, gt=0, description="Connection attempts allowed per connect_window_s (per venue)"
    )
    connect_window_s: float = Field(60.0, gt=0)
    subscribe_deadline_s: float = Field(5.0, gt=0, description="Subscribe within this after open")
    # liveness
    open_timeout_s: float = Field(10.0, gt=0)
    ping_interval_s: float | None = Field(20.0, gt=0, description="WebSocket ping period")
    ping_timeout_s: float | None = Field(20.0, gt=0, description="Close if no pong within")
    app_ping_interval_s: float | None = Field(
        None, gt=0, description="Application-level ping period (Kraken method=ping)"
    )
    max_connection_age_s: float | None = Field(
        None, gt=0, description="Rotate (make-before-break) connections older than this"
    )
    handover_timeout_s: float = Field(10.0, gt=0, description="Wait for the new connection")
    idle_timeout_s: dict[str, float] = Field(
        default_factory=dict, description="Fixed stale threshold per channel (else learned)"
    )
    stale_min_s: float = Field(5.0, gt=0, description="Learned stale threshold lower bound")
    stale_max_s: float = Field(300.0, gt=0, description="Learned stale threshold upper bound")
    stale_factor: float = Field(10.0, gt=1, description="Threshold = factor x mean interval")
    first_message_timeout_s: float = Field(
        30.0, gt=0, description="Stale if nothing since subscribe"
    )
    silence_min_s: float = Field(5.0, gt=0, description="Connection dead after >= this silence")
    silence_max_s: float = Field(60.0, gt=0, description="Connection dead after <= this silence")
    # reconnect backoff
    backoff_initial_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    backoff_reset_after_s: float = Field(60.0, gt=0, description="Healthy time that resets it")
    # gaps
    gap_grace_s: float = Field(1.0, ge=0, description="Wait for late messages before a gap")
    drop_duplicates: bool = Field(True, description="Drop frames whose sequence ids were seen")
    # backfill from the REST trade history
    rest_url: str = Field("", description="Base URL of the venue's REST API (trade history)")
    backfill: bool = Field(True, description="Fetch the trades of detected gaps over REST")
    backfill_calls: int = Field(10, gt=0, description="History requests per backfill window")
    backfill_window_s: float = Field(30.0, gt=0, description="Window of the request budget")
    backfill_max_trades: int = Field(
        100_000, gt=0, description="Trades one gap may fetch; beyond, the rest is unrecoverable"
    )
    backfill_retries: int = Field(5, ge=0, description="Retries of a failing history request")
    backfill_timeout_s: float = Field(
        900.0, gt=0, description="Give up on a gap (unrecoverable) after this long"
    )
    default_retry_after_s: float = Field(10.0, gt=0, description="Wait after a bare 429")
    # what the venue allows one account or IP, and what its messages cost
    max_connections: int | None = Field(
        None,
        gt=0,
        description="Connections the venue allows at once (per key or IP); more "
        "shards than this fail at start-up",
    )
    credits_per_message: float | None = Field(
        None, gt=0, description="Plan credits one data message costs (venues that bill them)"
    )
    daily_credit_budget: float | None = Field(
        None,
        gt=0,
        description="Credits the stream may use per UTC day; at the budget it "
        "stops until the next day (a rate_limited feed-status event says so)",
    )


@dataclass(frozen=True)
class Backfill:
    """Missing trade ids ``first..last`` of one stream (``key``, e.g. ``trade:BTC-USDT``),
    between the trades received at epoch ``start`` (None: unknown) and ``end``."""

    key: str
    symbol: str
    first: int
    last: int
    start: float | None
    end: float

    @property
    def gap_id(self) -> str:
        return f"{self.key}:{self.first}-{self.last}"


@dataclass(frozen=True)
class HistoryRequest:
    """One GET of a venue's REST trade history: ``path`` under its REST URL, the query, and
    the envelope channel its response is published under (the path template)."""

    path: str
    params: dict[str, str]
    channel: str


@dataclass(frozen=True)
class HistoryPage:
    """What one history response held: the trade ids (with their epoch times) and the
    request for the next page (None when the gap is covered or the history exhausted)."""

    ids: tuple[int, ...]
    times: tuple[float, ...] = ()
    next: HistoryRequest | None = None
    error: str | None = None


@dataclass(frozen=True)
class ShardPlan:
    """One connection: where to connect (URL and handshake headers, e.g. an API key), what
    to send after opening, which streams it feeds."""

    index: int
    url: str
    subscribe: tuple[str, ...]
    streams: tuple[StreamId, ...]
    symbols: tuple[str, ...] = field(default=())
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold a secret


class VenueProtocol:
    """Pure venue logic. Subclasses set ``name``, ``channels``, the symbol catalogue and
    implement the hooks; ``settings_class`` is read from ``INGEST_WS_<NAME>__*``."""

    name: str = ""
    settings_class: type[VenueSettings] = VenueSettings
    channels: frozenset[str] = frozenset()
    aliases: Mapping[str, str] = {}
    stream_channels: frozenset[str] | None = None  # channels that are per-symbol streams
    has_heartbeats = False
    bases: frozenset[str] = frozenset()  # asset codes Coinstream follows on this venue
    quotes: frozenset[str] = frozenset()  # the venue's quote currencies among them

    def __init__(self, settings: VenueSettings) -> None:
        self.settings = settings
        self.symbols = SymbolMap.build(self, settings.symbols, settings.extra_symbols)
        wanted = [self.aliases.get(c, c) for c in settings.channels]
        unknown = [c for c in wanted if c not in self.channels]
        if unknown or not wanted:
            raise ConfigError(
                f"{self.name}: unsupported channel(s) {unknown or '(none given)'}; choose from "
                f"{sorted(self.channels)} in {env_name(self.name, 'channels')}"
            )
        self.channel_list = list(dict.fromkeys(wanted))
        self._req_id = 0
        self._keys: dict[str, bytes] = {}

    # -- symbols (the venue's own form) ------------------------------------------------------
    def native(self, symbol: str) -> str:
        """Canonical ``BTC-USDT`` -> the venue's symbol (default: the canonical form)."""
        return symbol

    def canonical(self, native: str) -> str | None:
        """A venue symbol seen on the wire -> canonical, or None (default: canonical as is)."""
        return native if CANONICAL.match(native) else None

    # -- planning --------------------------------------------------------------------------
    def data_channels(self) -> list[str]:
        sc = self.stream_channels
        return [c for c in self.channel_list if sc is None or c in sc]

    def symbol_shards(self, jobs: Collection[str] | None = None) -> list[tuple[str, ...]]:
        """Group symbols (those of ``jobs`` only, if given) so each connection holds at most
        ``max_streams_per_connection``."""
        per_symbol = max(1, len(self.data_channels()))
        per_shard = max(1, self.settings.max_streams_per_connection // per_symbol)
        syms = [s for s in self.symbols.canonical if jobs is None or self.job_key(s) in jobs]
        return [tuple(syms[i : i + per_shard]) for i in range(0, len(syms), per_shard)]

    def plan(self, jobs: Collection[str] | None = None) -> list[ShardPlan]:
        """Every connection of the venue, or of the jobs in ``jobs`` (see ``job_keys``); more
        than ``max_connections`` is a ``ConfigError``."""
        plans = [self.shard(i, syms) for i, syms in enumerate(self.symbol_shards(jobs))]
        self.check_connections(len(plans))
        return plans

    # -- sharing the streams between replicas ------------------------------------------------
    # Replicas split a venue's streams into jobs (``coinstream.runtime.WorkLeases`` work keys);
    # each job is held by one replica at a time and moves as a whole. By default a job is a
    # symbol with all its channels (``binance/BTC-USDT``): they share a connection shard and
    # the symbol's sequences. A venue whose limits are per account rather than per symbol
    # (connections per key, a daily credit budget counted in the process) sets
    # ``split_by_symbol = False``: its one job is the whole venue (``coingecko-ws/*``).
    split_by_symbol = True

    def venue_job(self) -> str:
        """The one job of a venue that is not split by symbol."""
        return f"{self.name}/*"

    def job_key(self, symbol: str) -> str:
        """The job holding ``symbol``'s streams."""
        return f"{self.name}/{symbol}" if self.split_by_symbol else self.venue_job()

    def job_keys(self) -> tuple[str, ...]:
        """Every job of this venue's configured streams."""
        if not self.split_by_symbol:
            return (self.venue_job(),)
        return tuple(self.job_key(s) for s in self.symbols.canonical)

    def job_of_stream(self, stream_key: str) -> str:
        """The job a sequenced stream (checkpoint key ``trade:BTC-USDT``) belongs to."""
        if not self.split_by_symbol:
            return self.venue_job()
        return self.job_key(stream_key.partition(":")[2])

    def owns_venue(self, jobs: Collection[str] | None) -> bool:
        """For venues not split by symbol: whether ``jobs`` (None: all) holds the venue."""
        return jobs is None or self.venue_job() in jobs

    def check_connections(self, count: int) -> None:
        limit = self.settings.max_connections
        if limit is not None and count > limit:
            raise ConfigError(
                f"{self.name}: the subscriptions need {count} connections, more than the "
                f"{limit} the venue allows ({env_name(self.name, 'max_connections')}); "
                "subscribe fewer targets"
            )

    def shard(self, index: int, symbols: tuple[str, ...]) -> ShardPlan:
        raise NotImplementedError

    def next_req_id(self) -> int:
        self._req_id += 1
        return self._req_id

    # -- frames ----------------------------------------------------------------------------
    def classify(self, text: str) -> Frame:
        raise NotImplementedError

    def fast(self, text: str) -> tuple[Route, int | None] | None:
        """Hot path for plain data frames of known streams: (route, sequence id or None).

        None means "not sure": the caller then uses ``classify``. Venues without a cheap way
        to recognise their data frames keep this default.
        """
        return None

    def app_ping(self) -> str | None:
        """An application-level ping message, for venues that have one."""
        return None

    def sequence_name(self, channel: str) -> str:
        """What the sequence numbers of ``channel`` are, as gap events name them."""
        return f"{channel} id"

    # -- connection outcomes ----------------------------------------------------------------
    def refused(self, status: int) -> str | None:
        """Why an upgrade refused with HTTP ``status`` must not be retried (a rejected key),
        or None to reconnect with backoff."""
        return None

    def final_close(self, code: int | None, reason: str) -> str | None:
        """Why a close with ``code`` means "do not reconnect" (the venue's documented close
        codes for a bad key or plan), or None to reconnect with backoff."""
        return None

    # -- REST trade history (backfill) ------------------------------------------------------
    def history_request(self, job: Backfill) -> HistoryRequest | None:
        """The first request fetching ``job``'s trades, or None if the venue (or this stream)
        has no REST history."""
        return None

    def history_page(self, job: Backfill, request: HistoryRequest, body: str) -> HistoryPage:
        """Read one successful response (HTTP 200): its trade ids and the next request."""
        raise NotImplementedError

    def seq_points(self, payload: str) -> tuple[tuple[str, int], ...]:
        """The sequence points (stream key, id) of a published payload (read at start-up to
        learn where the streams left off)."""
        return tuple(p for p in self.classify(payload).seq if not p[0].startswith("*"))

    def key_for(self, frame: Frame) -> bytes:
        """Kafka key: ``venue:SYMBOL`` or, for frames without a symbol, ``venue:channel``."""
        part = frame.symbol or frame.channel
        key = self._keys.get(part)
        if key is None:
            key = f"{self.name}:{part}".encode()
            if len(self._keys) < 100_000:
                self._keys[part] = key
        return key
