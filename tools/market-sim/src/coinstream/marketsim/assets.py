"""The assets the REST sources describe: fixed identities and supply, changeable metadata.

``ASSETS`` holds what never changes in a run (ids at each provider, supply, rank) and each
asset's opening metadata. ``AssetBook`` (one per running simulator, ``sim.assets``) holds the
current metadata (name, description, links), which ``POST /_sim/assets/{asset}`` changes; every
REST source that serves metadata (CoinGecko ``/coins/{id}`` and ``/coins/markets``,
CoinMarketCap info, listings and quotes) reads it from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class Links:
    """An asset's links, as both CoinGecko and CoinMarketCap list them."""

    website: str
    reddit: str
    source_code: str


@dataclass(frozen=True, slots=True)
class Metadata:
    """What a source says about an asset besides numbers."""

    name: str
    description: str
    links: Links


@dataclass(frozen=True, slots=True)
class Asset:
    """One tracked asset: its identifiers at each provider, supply figures and opening
    metadata."""

    symbol: str
    cg_id: str
    cmc_id: int
    circulating: int
    max_supply: int | None
    rank: int
    date_added: str
    opening: Metadata

    @property
    def slug(self) -> str:
        return self.cg_id


def _asset(
    symbol: str,
    cg_id: str,
    cmc_id: int,
    name: str,
    supply: tuple[int, int | None],
    rank: int,
    date_added: str,
    description: str,
    website: str,
) -> Asset:
    links = Links(
        website, f"https://www.reddit.com/r/{cg_id}/", f"https://github.com/{cg_id}/{cg_id}"
    )
    return Asset(
        symbol, cg_id, cmc_id, supply[0], supply[1], rank, date_added,
        Metadata(name, description, links),
    )  # fmt: skip


ASSETS: tuple[Asset, ...] = (
    _asset(
        "BTC", "bitcoin", 1, "Bitcoin", (19_675_987, 21_000_000), 1,
        "2013-04-28T00:00:00.000Z", "Bitcoin is the first decentralized cryptocurrency.",
        "https://bitcoin.org/",
    ),
    _asset(
        "ETH", "ethereum", 1027, "Ethereum", (120_070_000, None), 2,
        "2015-08-07T00:00:00.000Z", "Ethereum is a decentralized platform for smart contracts.",
        "https://www.ethereum.org/",
    ),
    _asset(
        "SOL", "solana", 5426, "Solana", (446_000_000, None), 5,
        "2020-04-10T00:00:00.000Z", "Solana is a high-throughput blockchain.",
        "https://solana.com/",
    ),
    _asset(
        "PEPE", "pepe", 24478, "Pepe", (420_690_000_000_000, 420_690_000_000_000), 24,
        "2023-04-17T00:00:00.000Z", "Pepe is a meme coin on Ethereum.", "https://www.pepe.vip/",
    ),
)  # fmt: skip
BY_CG_ID = {a.cg_id: a for a in ASSETS}
BY_CMC_ID = {a.cmc_id: a for a in ASSETS}
BY_SYMBOL = {a.symbol: a for a in ASSETS}

FIELDS = ("name", "description", "links")
LINK_FIELDS = ("website", "reddit", "source_code")


class MetadataError(ValueError):
    """A metadata change the simulator cannot apply (the message says what to send)."""


def find(key: str) -> Asset | None:
    """An asset by CoinGecko id (``bitcoin``), symbol (``BTC``, any case) or CMC id (``1``)."""
    if key in BY_CG_ID:
        return BY_CG_ID[key]
    if key.upper() in BY_SYMBOL:
        return BY_SYMBOL[key.upper()]
    return BY_CMC_ID.get(int(key)) if key.isdigit() else None


def _text(field: str, value: Any, allow_empty: bool) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        kind = "a string" if allow_empty else "a non-empty string"
        raise MetadataError(f"{field} must be {kind}, got {value!r}")
    return value


def changed(current: Metadata, changes: Mapping[str, Any]) -> Metadata:
    """``current`` with ``changes`` applied (``{"name": ..., "description": ..., "links":
    {"website": ..., "reddit": ..., "source_code": ...}}``, each part optional)."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown or not changes:
        raise MetadataError(
            f"unknown field(s) {', '.join(unknown) or '(none given)'}: send any of "
            f"{', '.join(FIELDS)} (links: {', '.join(LINK_FIELDS)})"
        )
    new = current
    if "name" in changes:
        new = replace(new, name=_text("name", changes["name"], allow_empty=False))
    if "description" in changes:
        new = replace(new, description=_text("description", changes["description"], True))
    if "links" in changes:
        links = changes["links"]
        if not isinstance(links, Mapping) or set(links) - set(LINK_FIELDS):
            raise MetadataError(f"links must be an object with any of {', '.join(LINK_FIELDS)}")
        parts = {k: _text(f"links.{k}", v, allow_empty=True) for k, v in links.items()}
        new = replace(new, links=replace(new.links, **parts))
    return new


class AssetBook:
    """The current metadata of every asset in one running simulator."""

    def __init__(self, assets: tuple[Asset, ...] = ASSETS) -> None:
        self._current = {a.cg_id: a.opening for a in assets}

    def metadata(self, asset: Asset) -> Metadata:
        return self._current[asset.cg_id]

    def update(self, asset: Asset, changes: Mapping[str, Any]) -> Metadata:
        """Apply ``changes`` (see ``changed``); the new metadata. Raises ``MetadataError``."""
        new = changed(self._current[asset.cg_id], changes)
        self._current[asset.cg_id] = new
        return new
