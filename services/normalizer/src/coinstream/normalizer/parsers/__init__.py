"""Pure parsers, one module per source: ``parse(envelope, registry, hint) -> list[Event]``.

Parsers are plugins: each is registered under the source name in the entry-point group
``coinstream.normalizer.parsers`` (see ``services/normalizer/pyproject.toml``) and loaded at
start-up by ``load_parsers()``. A new provider ships a module with a ``parse`` callable and one
entry-point line; no core code changes. ``BUILTIN`` keeps the built-in sources working when the
package metadata is not installed (running from a source tree).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import entry_points

from coinstream.normalizer.parsers import (
    binance,
    cmc_dex,
    coinbase,
    coingecko,
    coinmarketcap,
    feargreed,
    kraken,
)
from coinstream.normalizer.parsers.common import Envelope, Parser, decode_envelope

log = logging.getLogger(__name__)

GROUP = "coinstream.normalizer.parsers"

BUILTIN: Mapping[str, Parser] = {
    "binance": binance.parse,
    "coinbase": coinbase.parse,
    "kraken": kraken.parse,
    "coingecko": coingecko.parse,
    "coinmarketcap": coinmarketcap.parse,
    "cmc-dex": cmc_dex.parse,
    "feargreed": feargreed.parse,
}
PARSERS = BUILTIN  # the built-in parsers by source name (kept for direct use in tests)


def load_parsers(group: str = GROUP) -> dict[str, Parser]:
    """Every parser registered in ``group`` by source name, over the built-ins.

    An entry point that fails to load or is not callable is logged and skipped (the
    built-in of that name, if any, stays).
    """
    parsers: dict[str, Parser] = dict(BUILTIN)
    for ep in entry_points(group=group):
        try:
            parser = ep.load()
        except Exception as exc:
            log.error("parser plugin failed to load", extra={"source": ep.name, "error": repr(exc)})
            continue
        if not callable(parser):
            log.error("parser plugin is not callable", extra={"source": ep.name})
            continue
        parsers[ep.name] = parser
    return parsers


__all__ = ["BUILTIN", "GROUP", "PARSERS", "Envelope", "Parser", "decode_envelope", "load_parsers"]
