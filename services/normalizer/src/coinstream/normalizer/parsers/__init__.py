"""Pure parsers, one module per source: ``parse(envelope, registry, hint) -> list[Event]``.

Parsers are plugins: each source registers a ``ParserPlugin`` (its ``parse`` and what its
events are, e.g. ``venue_trades=True`` for an exchange whose trades feed candles) under its
source name in the entry-point group ``coinstream.normalizer.parsers`` (see
``services/normalizer/pyproject.toml``); ``load_parsers()`` loads them at start-up. A new
provider ships a module and one entry-point line; no core code changes, and the core never
names a source. A bare ``parse`` callable is accepted too (it declares nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points

from coinstream.normalizer.parsers.common import Parser, ParserPlugin, decode_envelope
from coinstream.schemas.fastenvelope import Envelope

log = logging.getLogger(__name__)

GROUP = "coinstream.normalizer.parsers"
DISTRIBUTION = "coinstream-normalizer"


def as_plugin(value: ParserPlugin | Parser) -> ParserPlugin:
    """An entry point's value as a plugin: a bare ``parse`` callable declares nothing."""
    return value if isinstance(value, ParserPlugin) else ParserPlugin(value)


def _load(group: str, accept: Callable[[str | None], bool]) -> dict[str, ParserPlugin]:
    parsers: dict[str, ParserPlugin] = {}
    for ep in entry_points(group=group):
        dist = ep.dist.name if ep.dist is not None else None
        if not accept(dist):
            continue
        try:
            value = ep.load()
        except Exception as exc:
            log.error("parser plugin failed to load", extra={"source": ep.name, "error": repr(exc)})
            continue
        if not callable(value):
            log.error("parser plugin is not callable", extra={"source": ep.name})
            continue
        if ep.name in parsers and dist == DISTRIBUTION:
            continue  # another package's plugin of the same name wins over the built-in
        parsers[ep.name] = as_plugin(value)
    return parsers


def load_parsers(group: str = GROUP) -> dict[str, ParserPlugin]:
    """Every parser registered in ``group`` by source name.

    An entry point that fails to load or is not callable is logged and skipped; a plugin
    of another package named like a built-in replaces the built-in.
    """
    return _load(group, lambda dist: True)


BUILTIN: Mapping[str, ParserPlugin] = _load(GROUP, lambda dist: dist == DISTRIBUTION)
"""The parsers this package registers (read from its own entry points, not listed here)."""
PARSERS = BUILTIN  # kept for direct use in tests


__all__ = [
    "BUILTIN",
    "GROUP",
    "PARSERS",
    "Envelope",
    "Parser",
    "ParserPlugin",
    "as_plugin",
    "decode_envelope",
    "load_parsers",
]
