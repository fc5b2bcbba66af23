"""Kraken WebSocket v2 (``wss://ws.kraken.com/v2``): ticker and trade, heartbeat, status, ping.

Symbols are ``BTC/USD``. ``trade_id`` is a sequence per book, so trade messages reveal gaps and
duplicates; a trade snapshot (the last 50 trades) after a reconnect can fill the gap.
"""

from __future__ import annotations

import orjson
from pydantic import Field

from coinstream.ingest_ws.frames import (
    CONTROL,
    DATA,
    ERROR,
    HEARTBEAT,
    PONG,
    UNKNOWN,
    Frame,
    StreamId,
    iso_to_ms,
    json_object,
)
from coinstream.ingest_ws.symbols import split, split_at
from coinstream.ingest_ws.venues.base import (
    Backfill,
    HistoryPage,
    HistoryRequest,
    ShardPlan,
    VenueProtocol,
    VenueSettings,
)
from coinstream.ingest_ws.venues.catalogue import COMMON_BASES

SYMBOLS_PER_MESSAGE = 50
HISTORY_PATH = "/0/public/Trades"
HISTORY_PAGE = 1000
REST_CODES = {"BTC": "XBT", "DOGE": "XDG"}
"""Where Kraken's REST pair names keep the legacy codes (``XBTUSD``)."""
ALIASES = {"XBT": "BTC", "XDG": "DOGE"}
"""Kraken's legacy asset codes (v1 and REST) and their canonical codes."""


class KrakenSettings(VenueSettings):
    """Kraken v2: public limits are undocumented, so the defaults are conservative."""

    url: str = "wss://ws.kraken.com/v2"
    symbols: list[str] = Field(default_factory=lambda: ["BTC-USD", "ETH-USD"])
    channels: list[str] = Field(default_factory=lambda: ["ticker", "trade"])
    max_streams_per_connection: int = Field(200, gt=0)
    control_msgs_per_s: float = Field(2.0, gt=0)
    control_burst: int = Field(2, gt=0)
    connect_attempts: int = Field(15, gt=0)
    connect_window_s: float = Field(60.0, gt=0)
    app_ping_interval_s: float | None = Field(30.0, gt=0)
    rest_url: str = "https://api.kraken.com"
    # public REST: a counter of 15 that decays by one every 3 s, so about one call per 3 s
    backfill_calls: int = Field(10, gt=0)
    backfill_window_s: float = Field(30.0, gt=0)


class KrakenProtocol(VenueProtocol):
    name = "kraken"
    settings_class = KrakenSettings
    channels = frozenset({"ticker", "trade"})
    aliases = {"trades": "trade"}
    has_heartbeats = True
    bases = COMMON_BASES | {"TRX", "TON", "WIF", "USDT", "USDC"}
    quotes = frozenset({"USD", "USDT", "USDC", "EUR", "GBP", "CAD", "JPY", "BTC", "ETH"})

    def native(self, symbol: str) -> str:
        base, quote = split(symbol)
        return f"{base}/{quote}"

    def canonical(self, native: str) -> str | None:
        return split_at(native, "/", ALIASES)

    def sequence_name(self, channel: str) -> str:
        return "trade_id" if channel == "trade" else f"{channel} id"

    def shard(self, index: int, symbols: tuple[str, ...]) -> ShardPlan:
        natives = [self.symbols.to_venue(s) for s in symbols]
        messages = []
        for channel in self.channel_list:
            for i in range(0, len(natives), SYMBOLS_PER_MESSAGE):
                messages.append(
                    orjson.dumps(
                        {
                            "method": "subscribe",
                            "params": {
                                "channel": channel,
                                "symbol": natives[i : i + SYMBOLS_PER_MESSAGE],
                                "snapshot": True,
                            },
                            "req_id": self.next_req_id(),
                        }
                    ).decode()
                )
        streams = tuple((c, s) for s in symbols for c in self.channel_list)
        return ShardPlan(index, self.settings.url, tuple(messages), streams, symbols)

    def app_ping(self) -> str | None:
        return orjson.dumps({"method": "ping", "req_id": self.next_req_id()}).decode()

    def classify(self, text: str) -> Frame:
        msg = json_object(text)
        if isinstance(msg, Frame):
            return msg
        channel = msg.get("channel")
        if not isinstance(channel, str):
            method = msg.get("method")
            if method == "pong":
                return Frame(PONG, "pong")
            if msg.get("success") is False or "error" in msg:
                return Frame(ERROR, str(method or "error"), detail=str(msg.get("error", "")))
            if isinstance(method, str):
                return Frame(CONTROL, method)
            return Frame(UNKNOWN, "unknown")
        if channel == "heartbeat":
            return Frame(HEARTBEAT, channel)
        if channel == "status":
            systems = [d.get("system") for d in msg.get("data") or () if isinstance(d, dict)]
            return Frame(CONTROL, channel, detail=f"system={systems[0]}" if systems else "")
        if channel not in self.channels:
            return Frame(CONTROL, channel)
        streams: list[StreamId] = []
        seq: list[tuple[str, int]] = []
        exchange_ms = None
        for item in msg.get("data") or ():
            if not isinstance(item, dict):
                continue
            native = item.get("symbol")
            symbol = self.symbols.from_venue(native) if isinstance(native, str) else None
            if symbol is None:
                continue
            if (channel, symbol) not in streams:
                streams.append((channel, symbol))
            trade_id = item.get("trade_id")
            if channel == "trade" and isinstance(trade_id, int):
                seq.append((f"trade:{symbol}", trade_id))
            ts = item.get("timestamp")
            if isinstance(ts, str):
                exchange_ms = iso_to_ms(ts)
        symbol = streams[0][1] if streams else None
        return Frame(DATA, channel, symbol, tuple(streams), tuple(seq), exchange_ms)

    # -- REST trade history: GET /0/public/Trades?pair=&since=&count= ----------------------
    def history_request(self, job: Backfill) -> HistoryRequest | None:
        if not job.key.startswith("trade:"):
            return None
        start = job.start if job.start is not None else job.end - 3600
        return self._since(job, str(int(start) - 1))

    def _since(self, job: Backfill, since: str) -> HistoryRequest:
        base, _, quote = job.symbol.partition("-")
        pair = REST_CODES.get(base, base) + REST_CODES.get(quote, quote)
        params = {"pair": pair, "since": since, "count": str(HISTORY_PAGE)}
        return HistoryRequest(HISTORY_PATH, params, HISTORY_PATH)

    def history_page(self, job: Backfill, request: HistoryRequest, body: str) -> HistoryPage:
        """Oldest first after ``since``; ``last`` (nanoseconds) continues the scan."""
        try:
            doc = orjson.loads(body)
            if doc.get("error"):
                return HistoryPage((), error=f"kraken error {doc['error']!r}")
            result = doc["result"]
            rows = next(v for k, v in result.items() if k != "last")
            ids = tuple(int(r[6]) for r in rows)
            times = tuple(float(r[2]) for r in rows)
            last = str(result["last"])
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError, StopIteration):
            return HistoryPage((), error=f"unexpected Trades body: {body[:200]!r}")
        if not ids or max(ids) >= job.last or last == request.params["since"]:
            return HistoryPage(ids, times)
        return HistoryPage(ids, times, self._since(job, last))
