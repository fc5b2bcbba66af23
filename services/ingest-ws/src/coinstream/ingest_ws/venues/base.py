"""The shape every venue protocol has: plan shards, classify frames, build pings."""

from __future__ import annotations

from dataclasses import dataclass, field

from coinstream.ingest_ws.errors import ConfigError
from coinstream.ingest_ws.frames import Frame, Route, StreamId
from coinstream.ingest_ws.settings import VenueSettings
from coinstream.ingest_ws.symbols import SymbolMap


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
    """One connection: where to connect, what to send after opening, which streams it feeds."""

    index: int
    url: str
    subscribe: tuple[str, ...]
    streams: tuple[StreamId, ...]
    symbols: tuple[str, ...] = field(default=())


class VenueProtocol:
    """Pure venue logic. Subclasses set ``name``, ``channels`` and implement the hooks."""

    name: str = ""
    settings_class: type[VenueSettings] = VenueSettings  # read from INGEST_WS_<NAME>__*
    channels: frozenset[str] = frozenset()
    aliases: dict[str, str] = {}
    stream_channels: frozenset[str] | None = None  # channels that are per-symbol streams
    has_heartbeats = False

    def __init__(self, settings: VenueSettings) -> None:
        self.settings = settings
        self.symbols = SymbolMap.build(self.name, settings.symbols, settings.extra_symbols)
        wanted = [self.aliases.get(c, c) for c in settings.channels]
        unknown = [c for c in wanted if c not in self.channels]
        if unknown or not wanted:
            raise ConfigError(
                f"{self.name}: unsupported channel(s) {unknown or '(none given)'}; choose from "
                f"{sorted(self.channels)} in INGEST_WS_{self.name.upper()}__CHANNELS"
            )
        self.channel_list = list(dict.fromkeys(wanted))
        self._req_id = 0
        self._keys: dict[str, bytes] = {}

    # -- planning --------------------------------------------------------------------------
    def data_channels(self) -> list[str]:
        sc = self.stream_channels
        return [c for c in self.channel_list if sc is None or c in sc]

    def symbol_shards(self) -> list[tuple[str, ...]]:
        """Group symbols so each connection holds at most ``max_streams_per_connection``."""
        per_symbol = max(1, len(self.data_channels()))
        per_shard = max(1, self.settings.max_streams_per_connection // per_symbol)
        syms = list(self.symbols.canonical)
        return [tuple(syms[i : i + per_shard]) for i in range(0, len(syms), per_shard)]

    def plan(self) -> list[ShardPlan]:
        return [self.shard(i, syms) for i, syms in enumerate(self.symbol_shards())]

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
