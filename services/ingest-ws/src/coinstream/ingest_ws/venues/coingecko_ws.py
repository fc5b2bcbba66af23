"""CoinGecko WebSocket (beta, paid plans): ``wss://stream.coingecko.com/v1``.

ActionCable-style commands whose ``identifier`` and ``data`` are JSON *strings*::

    {"command":"subscribe","identifier":"{\\"channel\\":\\"CGSimplePrice\\"}"}
    {"command":"message","identifier":"{\\"channel\\":\\"CGSimplePrice\\"}",
     "data":"{\\"coin_id\\":[\\"bitcoin\\"],\\"vs_currencies\\":[\\"usd\\"],\\"action\\":\\"set_tokens\\"}"}

Channels: C1 ``CGSimplePrice`` (coin ids x vs currencies), G1 ``OnchainSimpleTokenPrice``
(``network:token``), G2 ``OnchainTrade`` and G3 ``OnchainOHLCV`` (``network:pool``; G3 also
per interval and token side). The server greets (``{"code":3000,...}`` in current docs, then
``{"type":"welcome"}``), confirms a channel with ``confirm_subscription`` or, per one client,
``{"code":2000}``, acknowledges each ``set_*``/``unset_*`` with ``{"code":2000}``, and pings with
``{"type":"ping"}`` frames (plus WebSocket pings, answered by the library). Data pushes are bare
objects with abbreviated keys; the channel code is in ``c`` (``ch`` in G3, whose ``c`` is the
close, and in older G2 pages), else the frame is recognised by its keys. There is no resume:
every connection subscribes again.

Limits: 10 connections per key, 100 subscriptions per channel per socket (a G3 subscription is
pool x interval x token side; each coin x vs currency counts as one, which is conservative
where the docs are silent); 0.1 credit per pushed message (only data pushes are counted:
[inferred] in the reference). Wire formats: ``shared/reference/wire-formats-aggregator-ws.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from typing import Any, Literal
from urllib.parse import urlencode

import orjson
from pydantic import Field, SecretStr

from coinstream.ingest_ws.errors import ConfigError
from coinstream.ingest_ws.frames import (
    CONTROL,
    DATA,
    ERROR,
    FATAL,
    HEARTBEAT,
    UNKNOWN,
    Frame,
    StreamId,
    json_object,
)
from coinstream.ingest_ws.symbols import env_name
from coinstream.ingest_ws.venues.base import ShardPlan, VenueProtocol, VenueSettings

NAME = "coingecko-ws"
C1, G1, G2, G3 = "CGSimplePrice", "OnchainSimpleTokenPrice", "OnchainTrade", "OnchainOHLCV"
CODES = {"C1": C1, "G1": G1, "G2": G2, "G3": G3}
"""The channel code a push carries -> its channel."""
INTERVALS = {"1s": 1, "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "2h": 7200, "4h": 14_400,
             "8h": 28_800, "12h": 43_200, "1d": 86_400}  # fmt: skip
"""G3 intervals (current docs; older pages lack 15m, 12h and 1d) in seconds."""
TOKEN_SIDES = ("base", "quote")
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")


class CoinGeckoWsSettings(VenueSettings):
    """CoinGecko's WebSocket: needs a paid plan's Pro API key, so it is off by default."""

    enabled: bool = False
    url: str = "wss://stream.coingecko.com/v1"
    api_key: SecretStr | None = Field(None, description="CoinGecko Pro API key (paid plan)")
    key_in: Literal["header", "query"] = Field(
        "header", description="Send the key as the x-cg-pro-api-key header or the query parameter"
    )
    channels: list[str] = Field(default_factory=lambda: [C1, G1, G2, G3])
    coin_ids: list[str] = Field(
        default_factory=lambda: ["bitcoin", "ethereum"], description="C1: CoinGecko API ids"
    )
    vs_currencies: list[str] = Field(default_factory=lambda: ["usd"], description="C1 quotes")
    tokens: list[str] = Field(default_factory=list, description="G1: network:token_address")
    pools: list[str] = Field(default_factory=list, description="G2 and G3: network:pool_address")
    ohlcv_intervals: list[str] = Field(default_factory=lambda: ["1m"], description="G3")
    ohlcv_tokens: list[str] = Field(default_factory=lambda: ["base"], description="G3 sides")
    max_subscriptions_per_channel: int = Field(
        100, gt=0, description="Subscriptions per channel per socket; more shard out"
    )
    max_connections: int | None = Field(10, gt=0)
    credits_per_message: float | None = Field(0.1, gt=0)
    daily_credit_budget: float | None = Field(5_000.0, gt=0)
    connect_attempts: int = Field(10, gt=0)
    connect_window_s: float = Field(60.0, gt=0)
    control_msgs_per_s: float = Field(4.0, gt=0)
    # swaps are event-driven: a quiet pool is not a stale feed for half an hour
    idle_timeout_s: dict[str, float] = Field(default_factory=lambda: {G2: 1800.0})
    stale_max_s: float = Field(600.0, gt=0)


def address(text: str) -> str:
    """A contract address as Coinstream compares them: ``0x`` hex in lower case, every other
    chain's address as it is spelled (base58 is case-sensitive)."""
    text = text.strip()
    return text.lower() if _HEX.fullmatch(text) else text


def target(network: str, addr: str) -> str:
    return f"{network.lower()}:{address(addr)}"


def split_target(text: str, setting: str) -> tuple[str, str]:
    """``bsc:0xabc`` -> (``bsc``, ``0xabc``); a ``ConfigError`` naming ``setting`` otherwise."""
    network, sep, addr = text.strip().partition(":")
    if not sep or not network or not addr or " " in text.strip():
        raise ConfigError(
            f"{NAME}: {text!r} is not network:address (e.g. eth:0xc02aaa39...); fix "
            f"{env_name(NAME, setting)}"
        )
    return network.lower(), address(addr)


def identifier(channel: str) -> str:
    """The ``identifier`` string of a channel, exactly as the docs write it."""
    return orjson.dumps({"channel": channel}).decode()


def command(name: str, channel: str, data: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"command": name, "identifier": identifier(channel)}
    if data is not None:
        body["data"] = orjson.dumps(data).decode()  # a JSON string inside the JSON
    return orjson.dumps(body).decode()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


class CoinGeckoWsProtocol(VenueProtocol):
    name = NAME
    settings_class = CoinGeckoWsSettings
    split_by_symbol = False  # connections per key and the credit budget are the venue's
    channels = frozenset({C1, G1, G2, G3})
    aliases = {"C1": C1, "G1": G1, "G2": G2, "G3": G3}

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        s = settings if isinstance(settings, CoinGeckoWsSettings) else CoinGeckoWsSettings()
        self.cg = s
        if s.enabled and (s.api_key is None or not s.api_key.get_secret_value()):
            raise ConfigError(
                f"{NAME}: an API key is required; set {env_name(NAME, 'api_key')} (a paid "
                "plan's Pro API key) or disable it with "
                f"{env_name(NAME, 'enabled')}=false"
            )
        bad = [i for i in s.ohlcv_intervals if i not in INTERVALS]
        if bad:
            raise ConfigError(
                f"{NAME}: OHLCV interval(s) {bad} not one of {list(INTERVALS)}; fix "
                f"{env_name(NAME, 'ohlcv_intervals')}"
            )
        sides = [t for t in s.ohlcv_tokens if t not in TOKEN_SIDES]
        if sides:
            raise ConfigError(
                f"{NAME}: OHLCV token side(s) {sides} not base or quote; fix "
                f"{env_name(NAME, 'ohlcv_tokens')}"
            )
        self.coins = list(dict.fromkeys(c.strip() for c in s.coin_ids if c.strip()))
        self.vs = list(dict.fromkeys(v.strip().lower() for v in s.vs_currencies if v.strip()))
        self.tokens = list(dict.fromkeys(split_target(t, "tokens") for t in s.tokens))
        self.pools = list(dict.fromkeys(split_target(p, "pools") for p in s.pools))
        self._candles: dict[str, int] = {}  # G3 stream -> newest candle open time seen

    # -- planning ------------------------------------------------------------------------------
    def _targets(self) -> dict[str, list[Any]]:
        """Per channel, the units that count as one subscription each."""
        s = self.cg
        out: dict[str, list[Any]] = {}
        if C1 in self.channel_list and self.coins and self.vs:
            out[C1] = self.coins  # each coin counts len(vs) times
        if G1 in self.channel_list and self.tokens:
            out[G1] = self.tokens
        if G2 in self.channel_list and self.pools:
            out[G2] = self.pools
        if G3 in self.channel_list and self.pools:
            out[G3] = [(p, i, t) for p in self.pools for i in s.ohlcv_intervals
                       for t in s.ohlcv_tokens]  # fmt: skip
        return out

    def plan(self, jobs: Collection[str] | None = None) -> list[ShardPlan]:
        """Each channel's targets in chunks of ``max_subscriptions_per_channel``; shard ``i``
        takes chunk ``i`` of every channel. Not split between replicas: one job for the
        venue (``jobs`` without it: no connection)."""
        if not self.owns_venue(jobs):
            return []
        limit = self.cg.max_subscriptions_per_channel
        per_coin = max(1, len(self.vs))
        if per_coin > limit:
            raise ConfigError(
                f"{NAME}: {per_coin} vs currencies exceed the {limit} subscriptions a channel "
                f"may hold per socket; fix {env_name(NAME, 'vs_currencies')}"
            )
        chunks: dict[str, list[list[Any]]] = {}
        for channel, items in self._targets().items():
            size = limit // per_coin if channel == C1 else limit
            chunks[channel] = _chunks(items, size)
        count = max((len(c) for c in chunks.values()), default=0)
        self.check_connections(count)
        return [self._shard(i, {c: v[i] for c, v in chunks.items() if i < len(v)})
                for i in range(count)]  # fmt: skip

    def _shard(self, index: int, parts: dict[str, list[Any]]) -> ShardPlan:
        messages: list[str] = []
        streams: list[StreamId] = []
        for channel, items in parts.items():
            if not items:
                continue
            messages.append(command("subscribe", channel))
            if channel == C1:
                data = {"coin_id": items, "vs_currencies": self.vs, "action": "set_tokens"}
                messages.append(command("message", channel, data))
                streams += [(C1, coin) for coin in items]
            elif channel == G1:
                keys = [f"{n}:{a}" for n, a in items]
                messages.append(command("message", channel, {
                    "network_id:token_addresses": keys, "action": "set_tokens"}))  # fmt: skip
                streams += [(G1, k) for k in keys]
            elif channel == G2:
                keys = [f"{n}:{a}" for n, a in items]
                messages.append(command("message", channel, {
                    "network_id:pool_addresses": keys, "action": "set_pools"}))  # fmt: skip
                streams += [(G2, k) for k in keys]
            else:  # G3: one set_pools per interval and token side
                groups: dict[tuple[str, str], list[str]] = {}
                for (n, a), interval, side in items:
                    groups.setdefault((interval, side), []).append(f"{n}:{a}")
                    streams.append((G3, f"{n}:{a}:{interval}:{side}"))
                for (interval, side), keys in groups.items():
                    data = {"network_id:pool_addresses": keys, "interval": interval,
                            "token": side, "action": "set_pools"}  # fmt: skip
                    messages.append(command("message", channel, data))
        return ShardPlan(index, self._url(), tuple(messages), tuple(streams), (), self._headers())

    def _key(self) -> str:
        key = self.cg.api_key
        return key.get_secret_value() if key is not None else ""

    def _url(self) -> str:
        url = self.settings.url
        if self.cg.key_in == "query" and self._key():
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}{urlencode({'x_cg_pro_api_key': self._key()})}"
        return url

    def _headers(self) -> dict[str, str]:
        if self.cg.key_in == "header" and self._key():
            return {"x-cg-pro-api-key": self._key()}
        return {}

    # -- connection outcomes ---------------------------------------------------------------
    def refused(self, status: int) -> str | None:
        if status in (401, 403):
            return (
                f"the API key was refused (HTTP {status}): check "
                f"{env_name(NAME, 'api_key')} and that the plan includes WebSocket"
            )
        return None

    def sequence_name(self, channel: str) -> str:
        if channel == G3:
            return "candle number (open time / interval)"
        return super().sequence_name(channel)

    # -- frames ----------------------------------------------------------------------------------
    def classify(self, text: str) -> Frame:
        msg = json_object(text)
        if isinstance(msg, Frame):
            return msg
        kind = msg.get("type")
        if isinstance(kind, str):
            return self._control(kind, msg)
        if "code" in msg:  # pushes never carry "code" (G3's close is "c")
            return self._status(msg)
        return self._data(msg)

    def _control(self, kind: str, msg: dict[str, Any]) -> Frame:
        if kind == "ping":
            return Frame(HEARTBEAT, "ping")
        if kind == "reject_subscription":
            return Frame(ERROR, kind, detail=f"subscription rejected: {msg.get('identifier')}")
        if kind == "disconnect":
            reason = str(msg.get("reason") or "")
            if msg.get("reconnect") is False:
                return Frame(FATAL, kind, detail=f"server disconnected us: {reason}")
            return Frame(CONTROL, kind, detail=reason)
        return Frame(CONTROL, kind)  # welcome, confirm_subscription

    @staticmethod
    def _status(msg: dict[str, Any]) -> Frame:
        code = msg.get("code")
        text = str(msg.get("message") or "")
        if isinstance(code, int) and code >= 4000:
            return Frame(ERROR, "error", detail=f"code {code}: {text}")
        if code == 3000:
            return Frame(CONTROL, "connected")
        return Frame(CONTROL, "ack", detail=text)  # 2000: (un)subscribed; never parse text

    def _data(self, msg: dict[str, Any]) -> Frame:
        ch = msg.get("ch")
        code = ch if isinstance(ch, str) else msg.get("c")
        channel = CODES.get(code) if isinstance(code, str) else None
        if channel is None:  # no code: recognise the push by its keys (goingecko's order)
            if "ta" in msg:
                channel = G1
            elif "tx" in msg:
                channel = G2
            elif "pa" in msg:
                channel = G3
            elif "i" in msg or "vs" in msg:
                channel = C1
            else:
                return Frame(UNKNOWN, "unknown")
        if channel == C1:
            name = _text(msg.get("i"))
        else:
            network, addr = _text(msg.get("n")), _text(msg.get("ta" if channel == G1 else "pa"))
            name = target(network, addr) if network and addr else None
        if name is None:
            return Frame(DATA, channel)
        t = msg.get("t")
        exchange_ms = None
        if isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t):
            exchange_ms = int(t) if channel == G2 else int(t * 1000)  # G2 in ms, others s
        if channel != G3:
            return Frame(DATA, channel, name, ((channel, name),), (), exchange_ms)
        stream = f"{name}:{msg.get('i')}:{msg.get('to')}"
        return Frame(
            DATA, channel, name, ((channel, stream),), self._candle(stream, msg), exchange_ms
        )

    def _candle(self, stream: str, msg: dict[str, Any]) -> tuple[tuple[str, int], ...]:
        """A sequence point for the first push of each new candle (the open candle is pushed
        again and again): its number, open time / interval, so a skipped candle is a gap."""
        seconds = INTERVALS.get(str(msg.get("i")))
        t = msg.get("t")
        if seconds is None or not isinstance(t, int) or isinstance(t, bool):
            return ()
        number = t // seconds
        last = self._candles.get(stream)
        if last is not None and number == last:
            return ()  # the same candle again (an update, not a duplicate)
        if (last is None or number > last) and len(self._candles) < 100_000:
            self._candles[stream] = number
        return ((f"{G3}:{stream}", number),)
