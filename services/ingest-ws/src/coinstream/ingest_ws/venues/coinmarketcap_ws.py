"""CoinMarketCap WebSocket (beta, Startup plan and above): ``wss://pro-stream.coinmarketcap.com/v1``.

The key goes in the ``X-CMC_PRO_API_KEY`` upgrade header (the only documented way). Commands
are plain JSON ``{"id", "method", "channel", "params"}`` with methods ``subscribe``,
``unsubscribe``, ``unsubscribe_all`` and ``ping``. Every server frame has a ``type``:
``welcome`` (with ``ping_interval_ms``), ``ack`` (``code`` 0, ``sub_count``, ``sub_limit``,
``duplicate``), ``data`` (``channel``, ``params`` with a *scalar* ``address``, ``data``, ``ts`` in
ms), ``error`` (a ``status`` object whose ``error_code`` is a string) and ``pong`` (one client saw
pongs without ``type``, ``{"id":2,"code":0,"ts":1,"msg":"PONG"}``: accepted too). On-chain pushes
are routed by ``channel`` when present and by their keys otherwise (a client reports frames
without the tag).

Channels: ``market@crypto_latest_price`` (CMC ids), and the DEX channels
``onchain@token_agg_event`` (token prices), ``onchain@transaction`` (swaps) and ``onchain@kline``
(candles, one subscription per token and interval); targets are ``platform_id:address``
(``14`` is BSC, ``16`` Solana). Limits: 10 connections, 100 subscriptions per connection (each
id or address counts as one, conservative where the docs are silent); 0.025 credit per message
received (the marketing pages and the Academy article; the developer overview says 0.1 per
subscription). Closes 4100/4101/4102 (key invalid, disabled, plan without WebSocket) and AUTH
errors 1001-1010 stop the shard; 4004 (too many connections) and 1000-1014 reconnect.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

import orjson
from pydantic import Field, SecretStr

from coinstream.ingest_ws.errors import ConfigError
from coinstream.ingest_ws.frames import (
    CONTROL,
    DATA,
    ERROR,
    FATAL,
    PONG,
    UNKNOWN,
    Frame,
    StreamId,
    json_object,
)
from coinstream.ingest_ws.symbols import env_name
from coinstream.ingest_ws.venues.base import ShardPlan, VenueProtocol, VenueSettings

NAME = "coinmarketcap-ws"
MARKET = "market@crypto_latest_price"
AGG, SWAPS, KLINE = "onchain@token_agg_event", "onchain@transaction", "onchain@kline"
ONCHAIN = (AGG, SWAPS, KLINE)
FINAL_CLOSES = {
    4100: "API key invalid",
    4101: "API key disabled",
    4102: "the plan does not include the WebSocket API",
}
AUTH_ERRORS = {
    1001: "API key invalid",
    1002: "API key missing",
    1003: "key not activated",
    1004: "plan expired",
    1006: "plan does not support this endpoint",
    1007: "key disabled",
    1010: "monthly credits exceeded",
}
"""Error codes retrying cannot fix: the shard stops (the rest are reported and go on)."""
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_INTERVAL = re.compile(r"^(\d+)([smhdw])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


class CoinMarketCapWsSettings(VenueSettings):
    """CoinMarketCap's WebSocket: needs a Startup (or higher) key, so it is off by default."""

    enabled: bool = False
    url: str = "wss://pro-stream.coinmarketcap.com/v1"
    api_key: SecretStr | None = Field(None, description="CoinMarketCap API key")
    channels: list[str] = Field(default_factory=lambda: [MARKET, AGG, SWAPS, KLINE])
    crypto_ids: list[int] = Field(
        default_factory=lambda: [1, 1027], description="market@crypto_latest_price: CMC ids"
    )
    tokens: list[str] = Field(
        default_factory=list, description="On-chain channels: platform_id:token_address"
    )
    kline_intervals: list[str] = Field(default_factory=lambda: ["1m"], description="onchain@kline")
    max_subscriptions_per_connection: int = Field(
        100, gt=0, description="Subscriptions per connection (the ack's sub_limit); more shard out"
    )
    max_connections: int | None = Field(10, gt=0)
    credits_per_message: float | None = Field(0.025, gt=0)
    daily_credit_budget: float | None = Field(1_000.0, gt=0)
    app_ping_interval_s: float | None = Field(10.0, gt=0, description="The welcome's 10 s")
    connect_attempts: int = Field(10, gt=0)
    connect_window_s: float = Field(60.0, gt=0)
    idle_timeout_s: dict[str, float] = Field(
        default_factory=lambda: {SWAPS: 1800.0, AGG: 1800.0}
    )  # event-driven: a quiet token is not a stale feed for half an hour
    stale_max_s: float = Field(600.0, gt=0)


def address(text: str) -> str:
    """``0x`` hex in lower case; every other chain's address as it is spelled."""
    text = text.strip()
    return text.lower() if _HEX.fullmatch(text) else text


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def interval_ms(interval: str) -> int | None:
    m = _INTERVAL.match(interval)
    return int(m.group(1)) * _UNIT_MS[m.group(2)] if m else None


def split_token(text: str) -> tuple[int, str]:
    """``14:0x8ac7...`` -> (14, ``0x8ac7...``); a ``ConfigError`` naming the setting otherwise."""
    platform, sep, addr = text.strip().partition(":")
    if not sep or not platform.isdigit() or not addr:
        raise ConfigError(
            f"{NAME}: {text!r} is not platform_id:address (e.g. 14:0x8ac76a51...); fix "
            f"{env_name(NAME, 'tokens')}"
        )
    return int(platform), address(addr)


Unit = tuple[str, int | None, str | None, Any]
"""One subscription: (channel, platform id, interval, id or address)."""


class CoinMarketCapWsProtocol(VenueProtocol):
    name = NAME
    settings_class = CoinMarketCapWsSettings
    split_by_symbol = False  # connections per key and the credit budget are the venue's
    channels = frozenset({MARKET, AGG, SWAPS, KLINE})
    aliases = {"market": MARKET, "prices": AGG, "transactions": SWAPS, "swaps": SWAPS,
               "kline": KLINE, "klines": KLINE}  # fmt: skip

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        s = settings if isinstance(settings, CoinMarketCapWsSettings) else CoinMarketCapWsSettings()
        self.cmc = s
        if s.enabled and (s.api_key is None or not s.api_key.get_secret_value()):
            raise ConfigError(
                f"{NAME}: an API key is required; set {env_name(NAME, 'api_key')} or disable "
                f"it with {env_name(NAME, 'enabled')}=false"
            )
        bad = [i for i in s.kline_intervals if interval_ms(i) is None]
        if bad:
            raise ConfigError(
                f"{NAME}: kline interval(s) {bad} are not like 1s, 5s, 1m, 15m, 1h, 1d; fix "
                f"{env_name(NAME, 'kline_intervals')}"
            )
        self.ids = list(dict.fromkeys(s.crypto_ids))
        self.tokens = list(dict.fromkeys(split_token(t) for t in s.tokens))
        self._candles: dict[str, int] = {}

    # -- planning ------------------------------------------------------------------------------
    def units(self) -> list[Unit]:
        out: list[Unit] = []
        if MARKET in self.channel_list:
            out += [(MARKET, None, None, cid) for cid in self.ids]
        for channel in (AGG, SWAPS):
            if channel in self.channel_list:
                out += [(channel, pid, None, a) for pid, a in self.tokens]
        if KLINE in self.channel_list:
            out += [(KLINE, pid, i, a) for pid, a in self.tokens for i in self.cmc.kline_intervals]
        return out

    def plan(self, jobs: Collection[str] | None = None) -> list[ShardPlan]:
        """Subscriptions in connections of at most ``max_subscriptions_per_connection``.
        Not split between replicas: one job for the venue (``jobs`` without it: none)."""
        if not self.owns_venue(jobs):
            return []
        units = self.units()
        size = self.cmc.max_subscriptions_per_connection
        parts = [units[i : i + size] for i in range(0, len(units), size)]
        self.check_connections(len(parts))
        return [self._shard(i, part) for i, part in enumerate(parts)]

    def _shard(self, index: int, units: list[Unit]) -> ShardPlan:
        groups: dict[tuple[str, int | None, str | None], list[Any]] = {}
        for channel, pid, interval, item in units:
            groups.setdefault((channel, pid, interval), []).append(item)
        messages: list[str] = []
        streams: list[StreamId] = []
        for (channel, pid, interval), items in groups.items():
            params: dict[str, Any]
            if channel == MARKET:
                params = {"crypto_ids": items}
                streams += [(MARKET, str(cid)) for cid in items]
            else:
                params = {"platform_id": pid, "address": items}
                if interval is not None:
                    params["interval"] = interval
                suffix = f":{interval}" if interval is not None else ""
                streams += [(channel, f"{pid}:{a}{suffix}") for a in items]
            body = {"id": self.next_req_id(), "method": "subscribe", "channel": channel,
                    "params": params}  # fmt: skip
            messages.append(orjson.dumps(body).decode())
        key = self.cmc.api_key.get_secret_value() if self.cmc.api_key is not None else ""
        headers = {"X-CMC_PRO_API_KEY": key} if key else {}
        return ShardPlan(index, self.settings.url, tuple(messages), tuple(streams), (), headers)

    def app_ping(self) -> str | None:
        return orjson.dumps({"id": self.next_req_id(), "method": "ping"}).decode()

    # -- connection outcomes ---------------------------------------------------------------
    def refused(self, status: int) -> str | None:
        if status in (401, 403):
            return f"the API key was refused (HTTP {status}): check {env_name(NAME, 'api_key')}"
        return None

    def final_close(self, code: int | None, reason: str) -> str | None:
        why = FINAL_CLOSES.get(code) if code is not None else None
        if why is None:
            return None
        return f"closed with {code} ({why}): check {env_name(NAME, 'api_key')} and the plan"

    def sequence_name(self, channel: str) -> str:
        if channel == KLINE:
            return "candle number (open time / interval)"
        return super().sequence_name(channel)

    # -- frames ----------------------------------------------------------------------------------
    def classify(self, text: str) -> Frame:
        msg = json_object(text)
        if isinstance(msg, Frame):
            return msg
        kind = msg.get("type")
        if kind == "data" or (kind is None and isinstance(msg.get("data"), dict)):
            return self._data(msg)
        if kind == "pong" or (kind is None and "ts" in msg and "id" in msg):
            return Frame(PONG, "pong")
        if kind == "ack":
            code = msg.get("code")
            if code not in (0, "0"):
                return Frame(ERROR, "ack", detail=f"ack code {code}: {msg.get('msg')}")
            count = msg.get("sub_count")
            return Frame(
                CONTROL,
                "ack",
                detail=f"sub_count={count} sub_limit={msg.get('sub_limit')}",
                subscriptions=count if isinstance(count, int) else None,
            )
        if kind == "error":
            return self._error(msg)
        if isinstance(kind, str):
            return Frame(CONTROL, kind)  # welcome
        return Frame(UNKNOWN, "unknown")

    @staticmethod
    def _error(msg: dict[str, Any]) -> Frame:
        status = _object(msg.get("status"))
        raw = status.get("error_code")  # a string on the wire; a number accepted too
        code = int(raw) if isinstance(raw, int | str) and str(raw).isdigit() else None
        text = (
            f"error {raw}: {status.get('error_message') or ''} {status.get('error_detail') or ''}"
        )
        if code in AUTH_ERRORS:
            return Frame(FATAL, "error", detail=f"{text.strip()} ({AUTH_ERRORS[code]})")
        return Frame(ERROR, "error", detail=text.strip())

    def _data(self, msg: dict[str, Any]) -> Frame:
        data = _object(msg.get("data"))
        params = _object(msg.get("params"))
        channel = msg.get("channel")
        if not isinstance(channel, str):  # untagged: recognise the push by its keys
            channel = (
                MARKET if "cid" in data else AGG if "ap" in data else SWAPS if "tx" in data
                else KLINE if "ot" in data and "o" in data else "unknown"
            )  # fmt: skip
        ts = data.get("ts") if isinstance(data.get("ts"), int) else msg.get("ts")
        exchange_ms = ts if isinstance(ts, int) and not isinstance(ts, bool) else None
        if channel == MARKET:
            cid = data.get("cid", params.get("crypto_ids"))
            if isinstance(cid, int) and not isinstance(cid, bool):
                name = str(cid)
                return Frame(DATA, channel, name, ((channel, name),), (), exchange_ms)
            return Frame(DATA, channel, exchange_ms=exchange_ms)
        pid = params.get("platform_id", data.get("pid"))
        addr = params.get("address", data.get("a"))
        if not isinstance(pid, int) or isinstance(pid, bool) or not isinstance(addr, str):
            return Frame(DATA, channel, exchange_ms=exchange_ms)
        name = f"{pid}:{address(addr)}"
        if channel != KLINE:
            return Frame(DATA, channel, name, ((channel, name),), (), exchange_ms)
        interval = str(params.get("interval"))
        stream = f"{name}:{interval}"
        return Frame(
            DATA, channel, name, ((channel, stream),), self._candle(stream, interval, data),
            exchange_ms,
        )  # fmt: skip

    def _candle(
        self, stream: str, interval: str, data: dict[str, Any]
    ) -> tuple[tuple[str, int], ...]:
        """Klines come once per closed interval: candle number ``ot / interval`` is a sequence,
        so a missing candle is a gap (a repeated one is not counted twice)."""
        size = interval_ms(interval)
        ot = data.get("ot")
        if size is None or not isinstance(ot, int) or isinstance(ot, bool):
            return ()
        number = ot // size
        last = self._candles.get(stream)
        if last is not None and number == last:
            return ()
        if (last is None or number > last) and len(self._candles) < 100_000:
            self._candles[stream] = number
        return ((f"{KLINE}:{stream}", number),)
