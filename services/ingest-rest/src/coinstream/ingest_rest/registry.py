"""Loads REST source plugins from the ``coinstream.sources`` entry-point group.

Other services may register non-REST sources in the same group (WebSocket venues); anything
that is not a ``RestSource`` is ignored here.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from coinstream.ingest_rest.source import RestSource
from coinstream.schemas import Topics

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "coinstream.sources"


def load_sources(group: str = ENTRY_POINT_GROUP) -> list[RestSource]:
    """Every installed REST source, sorted by name; a duplicate name is a configuration error."""
    found: dict[str, RestSource] = {}
    for ep in entry_points(group=group):
        obj = ep.load()
        if isinstance(obj, type) and issubclass(obj, RestSource):
            obj = obj()
        if not isinstance(obj, RestSource):
            log.debug("not a REST source; ignored", extra={"entry_point": ep.name})
            continue
        Topics().raw(obj.name)  # validates the name
        if obj.name in found:
            raise ValueError(f"two REST sources are named {obj.name!r}; rename one")
        found[obj.name] = obj
    return [found[name] for name in sorted(found)]
