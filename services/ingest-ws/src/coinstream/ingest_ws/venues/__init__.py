"""Venue protocols: subscription planning and frame classification, without I/O."""

from __future__ import annotations

from coinstream.ingest_ws.settings import VenueSettings
from coinstream.ingest_ws.venues.base import ShardPlan, VenueProtocol
from coinstream.ingest_ws.venues.binance import BinanceProtocol
from coinstream.ingest_ws.venues.coinbase import CoinbaseProtocol
from coinstream.ingest_ws.venues.kraken import KrakenProtocol

PROTOCOLS: dict[str, type[VenueProtocol]] = {
    "binance": BinanceProtocol,
    "coinbase": CoinbaseProtocol,
    "kraken": KrakenProtocol,
}


def build_protocol(venue: str, settings: VenueSettings) -> VenueProtocol:
    """The venue's protocol for ``settings``; raises ``ConfigError``/``UnknownSymbolError``."""
    return PROTOCOLS[venue](settings)


__all__ = ["PROTOCOLS", "ShardPlan", "VenueProtocol", "build_protocol"]
