"""ingest-ws venue: ``{"op": "subscribe", "pairs": ["eth_usd"]}``, then one frame per trade
``{"type": "trade", "pair": "eth_usd", "id": 7, "px": "3501.2", "qty": "0.5", ...}``."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from coinstream.ingest_ws.frames import CONTROL, DATA, UNKNOWN, Frame
from coinstream.ingest_ws.venues.base import ShardPlan, VenueProtocol, VenueSettings


class ExamplexSettings(VenueSettings):
    url: str = "wss://examplex.invalid/ws"
    symbols: list[str] = Field(default_factory=lambda: ["ETH-USD"])
    channels: list[str] = Field(default_factory=lambda: ["trades"])


class ExamplexProtocol(VenueProtocol):
    name = "examplex"
    settings_class = ExamplexSettings
    channels = frozenset({"trades"})
    bases = frozenset({"BTC", "ETH"})
    quotes = frozenset({"USD"})

    def native(self, symbol: str) -> str:
        return symbol.replace("-", "_").lower()

    def canonical(self, native: str) -> str | None:
        return native.upper().replace("_", "-")

    def sequence_name(self, channel: str) -> str:
        return "trade id"

    def shard(self, index: int, symbols: tuple[str, ...]) -> ShardPlan:
        message = json.dumps({"op": "subscribe", "pairs": [self.native(s) for s in symbols]})
        streams = tuple(("trades", s) for s in symbols)
        return ShardPlan(index, self.settings.url, (message,), streams, symbols)

    def classify(self, text: str) -> Frame:
        try:
            msg: Any = json.loads(text)
        except ValueError:
            return Frame(UNKNOWN, "unknown", detail="not JSON")
        if not isinstance(msg, dict) or msg.get("type") != "trade":
            return Frame(CONTROL, "control")
        symbol = self.symbols.from_venue(str(msg.get("pair")))
        if symbol is None:
            return Frame(UNKNOWN, "trades")
        seq = ((f"trade:{symbol}", msg["id"]),) if isinstance(msg.get("id"), int) else ()
        return Frame(DATA, "trades", symbol, (("trades", symbol),), seq, msg.get("ts"))
