"""Coinbase Advanced Trade market data (``wss://advanced-trade-ws.coinbase.com``).

One channel per subscribe message, sent within 5 s of opening. Every message carries
``sequence_num``, a counter per connection: a jump means messages were dropped. ``heartbeats``
arrive every second and keep quiet subscriptions open.
"""

from __future__ import annotations

import orjson
from pydantic import Field

from coinstream.ingest_ws.frames import (
    CONNECTION_SCOPE,
    CONTROL,
    DATA,
    ERROR,
    HEARTBEAT,
    UNKNOWN,
    Frame,
    StreamId,
    iso_to_ms,
    json_object,
)
from coinstream.ingest_ws.venues.base import (
    Backfill,
    HistoryPage,
    HistoryRequest,
    ShardPlan,
    VenueProtocol,
    VenueSettings,
)
from coinstream.ingest_ws.venues.catalogue import COMMON_BASES

_ITEMS = {"ticker": "tickers", "ticker_batch": "tickers", "market_trades": "trades"}
PRODUCTS_PER_MESSAGE = 100
HISTORY_CHANNEL = "/api/v3/brokerage/market/products/{product_id}/ticker"
HISTORY_PAGE = 1000


class CoinbaseSettings(VenueSettings):
    """Coinbase Advanced Trade: 8 connections/s and 8 unauthenticated messages/s per IP."""

    url: str = "wss://advanced-trade-ws.coinbase.com"
    symbols: list[str] = Field(default_factory=lambda: ["BTC-USD", "ETH-USD"])
    channels: list[str] = Field(default_factory=lambda: ["ticker", "market_trades", "heartbeats"])
    max_streams_per_connection: int = Field(300, gt=0)
    control_msgs_per_s: float = Field(6.0, gt=0, le=8.0)
    control_burst: int = Field(6, gt=0)
    connect_attempts: int = Field(6, gt=0)
    connect_window_s: float = Field(1.0, gt=0)
    rest_url: str = "https://api.coinbase.com"
    # public REST endpoints: 10 requests per second and IP
    backfill_calls: int = Field(5, gt=0)
    backfill_window_s: float = Field(1.0, gt=0)


class CoinbaseProtocol(VenueProtocol):
    name = "coinbase"
    settings_class = CoinbaseSettings
    channels = frozenset({"ticker", "ticker_batch", "market_trades", "heartbeats"})
    aliases = {"heartbeat": "heartbeats", "trades": "market_trades", "matches": "market_trades"}
    stream_channels = frozenset({"ticker", "ticker_batch", "market_trades"})
    has_heartbeats = True
    bases = COMMON_BASES | {"USDT"}
    quotes = frozenset({"USD", "USDC", "USDT", "EUR", "GBP", "BTC", "ETH"})

    def sequence_name(self, channel: str) -> str:
        return "trade_id" if channel == "market_trades" else f"{channel} id"

    def shard(self, index: int, symbols: tuple[str, ...]) -> ShardPlan:
        products = [self.symbols.to_venue(s) for s in symbols]
        messages = []
        for channel in self.channel_list:
            for i in range(0, len(products), PRODUCTS_PER_MESSAGE):
                messages.append(
                    orjson.dumps(
                        {
                            "type": "subscribe",
                            "product_ids": products[i : i + PRODUCTS_PER_MESSAGE],
                            "channel": channel,
                        }
                    ).decode()
                )
        streams = tuple((c, s) for s in symbols for c in self.data_channels())
        return ShardPlan(index, self.settings.url, tuple(messages), streams, symbols)

    def classify(self, text: str) -> Frame:
        msg = json_object(text)
        if isinstance(msg, Frame):
            return msg
        channel = msg.get("channel")
        if not isinstance(channel, str):
            if msg.get("type") == "error":
                return Frame(ERROR, "error", detail=str(msg.get("message", "")))
            return Frame(UNKNOWN, "unknown")
        seq_num = msg.get("sequence_num")
        seq = ((CONNECTION_SCOPE, seq_num),) if isinstance(seq_num, int) else ()
        ts = msg.get("timestamp")
        exchange_ms = iso_to_ms(ts) if isinstance(ts, str) else None
        if channel == "heartbeats":
            return Frame(HEARTBEAT, channel, seq=seq, exchange_ms=exchange_ms)
        items_key = _ITEMS.get(channel)
        if items_key is None:
            return Frame(CONTROL, channel, seq=seq, exchange_ms=exchange_ms)
        streams: list[StreamId] = []
        trades: list[tuple[str, int]] = []
        for event in msg.get("events") or ():
            for item in (event or {}).get(items_key) or ():
                product = item.get("product_id") if isinstance(item, dict) else None
                if isinstance(product, str):
                    symbol = self.symbols.from_venue(product)
                    if symbol is not None and (channel, symbol) not in streams:
                        streams.append((channel, symbol))
                    trade_id = item.get("trade_id")
                    if (
                        symbol is not None
                        and channel == "market_trades"
                        and isinstance(trade_id, str)
                        and trade_id.isdigit()
                    ):  # trade ids are a sequence per product: gaps survive reconnects
                        trades.append((f"trade:{symbol}", int(trade_id)))
        symbol = streams[0][1] if streams else None
        return Frame(DATA, channel, symbol, tuple(streams), seq + tuple(trades), exchange_ms)

    # -- REST: GET /api/v3/brokerage/market/products/{id}/ticker?limit=&start=&end= ----------
    def history_request(self, job: Backfill) -> HistoryRequest | None:
        if not job.key.startswith("trade:"):
            return None
        start = int(job.start if job.start is not None else job.end - 3600) - 1
        return self._window(job, start, int(job.end) + 2)

    def _window(self, job: Backfill, start: int, end: int) -> HistoryRequest:
        product = self.symbols.to_venue(job.symbol)
        params = {"limit": str(HISTORY_PAGE), "start": str(start), "end": str(end)}
        return HistoryRequest(HISTORY_CHANNEL.format(product_id=product), params, HISTORY_CHANNEL)

    def history_page(self, job: Backfill, request: HistoryRequest, body: str) -> HistoryPage:
        """Newest first within the time window; a full page continues with an earlier end."""
        try:
            trades = orjson.loads(body)["trades"]
            ids = tuple(int(t["trade_id"]) for t in trades)
            times = tuple(iso_to_ms(str(t["time"])) or 0 for t in trades)
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
            return HistoryPage((), error=f"unexpected market trades body: {body[:200]!r}")
        seconds = tuple(t / 1000 for t in times)
        if len(ids) < HISTORY_PAGE or min(ids) <= job.first:
            return HistoryPage(ids, seconds)
        start = int(request.params["start"])
        end = int(min(seconds)) + 1  # inclusive of the oldest second: overlaps are absorbed
        if end >= int(request.params["end"]):
            return HistoryPage(ids, seconds, error="more than 1000 trades in one second")
        return HistoryPage(ids, seconds, self._window(job, start, end))
