"""Venue protocols: subscription planning and frame classification, without I/O.

Venues are plugins: a module with a ``VenueProtocol`` subclass (its ``name`` and its
``settings_class``), registered under the entry-point group ``coinstream.ingest_ws.venues``
(``coinstream.<package>.<plugin kind>``, like ``coinstream.normalizer.parsers`` and
``coinstream.marketsim.routes``; the entry-point name is the source name in every group) in
a ``pyproject.toml``::

    [project.entry-points."coinstream.ingest_ws.venues"]
    binance = "coinstream.ingest_ws.venues.binance:BinanceProtocol"

Its settings come from ``INGEST_WS_<VENUE>__*`` like the built-in venues'.
"""

from __future__ import annotations

import functools
import re
from importlib.metadata import entry_points

from coinstream.ingest_ws.errors import ConfigError
from coinstream.ingest_ws.venues.base import ShardPlan, VenueProtocol, VenueSettings

ENTRY_POINT_GROUP = "coinstream.ingest_ws.venues"
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")  # what Topics.raw() accepts


@functools.cache
def protocols() -> dict[str, type[VenueProtocol]]:
    """Every registered venue protocol by venue name, in name order (loaded once)."""
    found: dict[str, type[VenueProtocol]] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, VenueProtocol)):
            raise ConfigError(f"entry point {ep.name} = {ep.value} is not a VenueProtocol class")
        if cls.name != ep.name:
            raise ConfigError(
                f"entry point {ep.name} names {cls.__name__}, whose name is {cls.name}"
            )
        if not SOURCE_NAME.match(ep.name):
            raise ConfigError(
                f"venue name {ep.name!r} cannot name a raw topic: use lower-case letters, "
                "digits and '-'"
            )
        found[ep.name] = cls
    return found


def build_protocol(venue: str, settings: VenueSettings) -> VenueProtocol:
    """The venue's protocol for ``settings``; raises ``ConfigError``/``UnknownSymbolError``."""
    cls = protocols().get(venue)
    if cls is None:
        raise ConfigError(
            f"unknown venue {venue!r}: registered ({ENTRY_POINT_GROUP}) are {sorted(protocols())}"
        )
    return cls(settings)


__all__ = [
    "ENTRY_POINT_GROUP",
    "ShardPlan",
    "VenueProtocol",
    "VenueSettings",
    "build_protocol",
    "protocols",
]
