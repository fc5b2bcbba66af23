"""Binance spot combined streams: ``{URL}/stream?streams=btcusdt@trade/...``.

Frames are ``{"stream": name, "data": payload}``; the envelope channel is the stream name.
Trade (``t``) and aggTrade (``a``) ids are contiguous per symbol, so they reveal gaps. Streams
beyond ``url_max_streams`` are added with SUBSCRIBE messages (paced by the control limiter).
"""

from __future__ import annotations

import orjson
from pydantic import Field

from coinstream.ingest_ws.frames import (
    CONTROL,
    DATA,
    ERROR,
    SHUTDOWN,
    UNKNOWN,
    Frame,
    Route,
    json_object,
)
from coinstream.ingest_ws.symbols import split, split_concatenated
from coinstream.ingest_ws.venues.base import (
    Backfill,
    HistoryPage,
    HistoryRequest,
    ShardPlan,
    VenueProtocol,
    VenueSettings,
)
from coinstream.ingest_ws.venues.catalogue import COMMON_BASES

_SEQ_FIELD = {"trade": "t", "aggTrade": "a"}
_FIELD_PATTERN = {"t": ',"t":', "a": ',"a":'}
_PREFIX = '{"stream":"'
_PREFIX_LEN = len(_PREFIX)
SUBSCRIBE_BATCH = 200
HISTORY_PATH = "/api/v3/historicalTrades"
HISTORY_PAGE = 1000  # the endpoint's maximum limit
RouteInfo = tuple[str | None, tuple[tuple[str, str], ...], str | None, str]
"""A stream name's meaning: canonical symbol, watchdog streams, sequence field and key."""


class BinanceSettings(VenueSettings):
    """Binance spot combined streams: 1024 streams and 5 msgs/s per connection, 300
    connection attempts per 5 min per IP, disconnect at 24 h."""

    url: str = "wss://stream.binance.com:9443"
    symbols: list[str] = Field(default_factory=lambda: ["BTC-USDT", "ETH-USDT"])
    channels: list[str] = Field(default_factory=lambda: ["trade", "bookTicker"])
    max_streams_per_connection: int = Field(1024, gt=0, le=1024)
    control_msgs_per_s: float = Field(4.0, gt=0, le=5.0)
    connect_attempts: int = Field(300, gt=0)
    connect_window_s: float = Field(300.0, gt=0)
    max_connection_age_s: float | None = Field(23.5 * 3600, gt=0)
    url_max_streams: int = Field(
        100, gt=0, description="Streams put in the connect URL; the rest via SUBSCRIBE"
    )
    rest_url: str = "https://api.binance.com"
    # historicalTrades weighs 25 of the 6,000 request weight per minute and IP: a quarter of it
    backfill_calls: int = Field(60, gt=0)
    backfill_window_s: float = Field(60.0, gt=0)


class BinanceProtocol(VenueProtocol):
    name = "binance"
    settings_class = BinanceSettings
    channels = frozenset({"trade", "aggTrade", "bookTicker", "ticker", "kline_1m"})
    aliases = {"24hrTicker": "ticker", "kline": "kline_1m"}
    bases = COMMON_BASES | {"BNB", "TRX", "TON", "WIF", "FDUSD", "USDC"}
    quotes = frozenset({"USDT", "USDC", "FDUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY"})

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        self._routes: dict[str, RouteInfo] = {}
        self._fast_routes: dict[str, tuple[Route, str | None]] = {}
        self.url_max = settings.url_max_streams if isinstance(settings, BinanceSettings) else 100

    def native(self, symbol: str) -> str:
        base, quote = split(symbol)
        return f"{base}{quote}"

    def canonical(self, native: str) -> str | None:
        return split_concatenated(native, self.quotes)

    def sequence_name(self, channel: str) -> str:
        return "trade_id" if channel == "trade" else f"{channel} id"

    def stream_name(self, channel: str, symbol: str) -> str:
        return f"{self.symbols.to_venue(symbol).lower()}@{channel}"

    def shard(self, index: int, symbols: tuple[str, ...]) -> ShardPlan:
        streams = [(c, s) for s in symbols for c in self.channel_list]
        names = [self.stream_name(c, s) for c, s in streams]
        in_url, rest = names[: self.url_max], names[self.url_max :]
        url = f"{self.settings.url.rstrip('/')}/stream?streams={'/'.join(in_url)}"
        subscribe = tuple(
            orjson.dumps(
                {
                    "method": "SUBSCRIBE",
                    "params": rest[i : i + SUBSCRIBE_BATCH],
                    "id": self.next_req_id(),
                }
            ).decode()
            for i in range(0, len(rest), SUBSCRIBE_BATCH)
        )
        return ShardPlan(index, url, subscribe, tuple(streams), symbols)

    def classify(self, text: str) -> Frame:
        if text.startswith(_PREFIX):
            frame = self._fast(text)
            if frame is not None:
                return frame
        return self._parse(text)

    def fast(self, text: str) -> tuple[Route, int | None] | None:
        """A data frame of a stream already seen through ``classify``: route and trade id."""
        if not text.startswith(_PREFIX):
            return None
        end = text.find('"', _PREFIX_LEN)
        hit = self._fast_routes.get(text[_PREFIX_LEN:end])
        if hit is None:
            return None
        route, pattern = hit
        if pattern is None:
            return route, None
        i = text.find(pattern, end)
        if i < 0:
            return None
        i += 5
        try:
            return route, int(text[i : text.find(",", i)])
        except ValueError:
            return None

    def _fast(self, text: str) -> Frame | None:
        """Known data streams without a full JSON parse: Binance writes ``stream`` first and
        ``E``/``t``/``a`` as plain integers. Anything unexpected falls back to ``_parse``."""
        end = text.find('"', _PREFIX_LEN)
        route = self._routes.get(text[_PREFIX_LEN:end])
        if route is None:
            return None
        symbol, streams, field, seq_key = route
        try:
            seq: tuple[tuple[str, int], ...] = ()
            if field is not None:
                i = text.find(_FIELD_PATTERN[field], end)
                if i < 0:
                    return None
                i += 5
                seq = ((seq_key, int(text[i : text.find(",", i)])),)
            exchange_ms = None
            i = text.find(',"E":', end)
            if i > 0:
                i += 5
                exchange_ms = int(text[i : text.find(",", i)])
        except ValueError:
            return None
        return Frame(DATA, text[_PREFIX_LEN:end], symbol, streams, seq, exchange_ms)

    def _parse(self, text: str) -> Frame:
        msg = json_object(text)
        if isinstance(msg, Frame):
            return msg
        stream = msg.get("stream")
        if not isinstance(stream, str):
            if "code" in msg:
                return Frame(ERROR, "control", detail=str(msg.get("msg", "")))
            if "result" in msg:
                return Frame(CONTROL, "control")
            if msg.get("e") == "serverShutdown":
                return Frame(SHUTDOWN, "!serverShutdown", exchange_ms=msg.get("E"))
            return Frame(UNKNOWN, "unknown")
        data = msg.get("data")
        if not isinstance(data, dict):
            return Frame(UNKNOWN, stream)
        route = self._routes.get(stream)
        if route is None:
            if stream == "!serverShutdown" or data.get("e") == "serverShutdown":
                return Frame(SHUTDOWN, stream, exchange_ms=data.get("E"))
            route = self._route(stream)
        symbol, streams, field, seq_key = route
        seq: tuple[tuple[str, int], ...] = ()
        if field is not None:
            value = data.get(field)
            if value.__class__ is int:
                seq = ((seq_key, value),)
        exchange_ms = data.get("E")
        return Frame(
            DATA,
            stream,
            symbol,
            streams,
            seq,
            exchange_ms if exchange_ms.__class__ is int else None,
        )

    def _route(self, stream: str) -> RouteInfo:
        """What a stream name means (symbol, watchdog streams, sequence field); cached."""
        native, _, channel = stream.partition("@")
        symbol = self.symbols.from_venue(native)
        streams = ((channel, symbol),) if symbol is not None else ()
        field = _SEQ_FIELD.get(channel) if symbol is not None else None
        seq_key = f"{channel}:{symbol}"
        route: RouteInfo = (symbol, streams, field, seq_key)
        if len(self._routes) < 100_000:
            self._routes[stream] = route
            if symbol is not None:
                self._fast_routes[stream] = (
                    Route(
                        stream,
                        symbol,
                        f"{self.name}:{symbol}".encode(),
                        (channel, symbol),
                        seq_key if field is not None else None,
                    ),
                    _FIELD_PATTERN[field] if field is not None else None,
                )
        return route

    # -- REST trade history: GET /api/v3/historicalTrades?symbol=&fromId=&limit= -----------
    def history_request(self, job: Backfill) -> HistoryRequest | None:
        if not job.key.startswith("trade:"):
            return None  # aggTrade ids are another sequence
        return self._history_from(job, job.first)

    def _history_from(self, job: Backfill, from_id: int) -> HistoryRequest:
        limit = max(1, min(HISTORY_PAGE, job.last - from_id + 1))
        params = {
            "symbol": self.symbols.to_venue(job.symbol),
            "fromId": str(from_id),
            "limit": str(limit),
        }
        return HistoryRequest(HISTORY_PATH, params, HISTORY_PATH)

    def history_page(self, job: Backfill, request: HistoryRequest, body: str) -> HistoryPage:
        """Oldest first from ``fromId``; ids beyond the oldest kept trade are simply absent."""
        try:
            trades = orjson.loads(body)
            ids = tuple(int(t["id"]) for t in trades)
            times = tuple(int(t["time"]) / 1000 for t in trades)
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
            return HistoryPage((), error=f"unexpected historicalTrades body: {body[:200]!r}")
        if not ids or max(ids) >= job.last:
            return HistoryPage(ids, times)
        return HistoryPage(ids, times, self._history_from(job, max(ids) + 1))
