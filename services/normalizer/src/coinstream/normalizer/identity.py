"""Identity registry: every source's identifiers -> one canonical asset id.

Canonical asset ids are CoinGecko-style slugs (``bitcoin``, ``tether``). The registry maps
CoinGecko ids, CoinMarketCap ids and chain + contract address of DEX tokens to them; a venue's
own legacy codes (``XBT`` on Kraken means ``BTC``) are the venue parser's knowledge and come
with its lookups (``instrument(..., codes=...)``). Ticker symbols are never used alone to identify an
asset (``PEPE`` or ``UNI`` name several tokens): an id the registry does not know keeps a
provider-namespaced id (``coingecko:some-coin``, ``cmc:123``, ``dex:ethereum:0xabc``) and is
reported as unmapped, never merged with a same-symbol asset.

Exchange instruments (``BTCUSDT``, ``BTC-USD``, ``BTC/USD``, ``XBT/USD``) are split into base
and quote codes using the venue's separator or, for concatenated symbols, the known quote
codes; a symbol that cannot be split unambiguously raises ``UnknownInstrumentError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coinstream.normalizer.errors import UnknownInstrumentError

_HEX_ADDRESS = re.compile(r"0[xX][0-9a-fA-F]+")
_CODE_UNSAFE = re.compile(r"[^A-Za-z0-9.+$]")


def contract_address(address: str) -> str:
    """A contract address or token denom in the form to compare and store, per chain family.

    Hex addresses (``0x`` + hex digits: EVM chains, and the hex forms of Starknet, Aptos and
    Sui object ids) are case-insensitive and become lowercase (EIP-55 mixed case is only a
    checksum). Everything else is case-sensitive and kept as it is: Solana and Tron base58,
    Bitcoin-like addresses, Cosmos denoms (``factory/osmo1.../uDenom``, ``ibc/27394FB0...``),
    Sui type tags (``0x2::sui::SUI``: only the hex prefix is an address)."""
    address = address.strip()
    if _HEX_ADDRESS.fullmatch(address):
        return address.lower()
    return address


def code_from_id(source_id: str) -> str:
    """An asset code derived from a provider id when no ticker is known (``uniswap-2`` ->
    ``UNISWAP.2``): upper case, characters outside the code grammar become ``.``."""
    code = _CODE_UNSAFE.sub(".", source_id.upper())[:32]
    return code if code[:1].isalnum() else f"X{code[:31]}"


@dataclass(frozen=True, slots=True)
class Asset:
    """One canonical asset and its identifiers at each source."""

    id: str
    code: str
    coingecko: str | None = None
    cmc: int | None = None
    platforms: tuple[tuple[str, str], ...] = ()  # (chain, contract address)
    fiat: bool = False


_ETH = "ethereum"
DEFAULT_ASSETS: tuple[Asset, ...] = (
    Asset("bitcoin", "BTC", "bitcoin", 1),
    Asset("ethereum", "ETH", "ethereum", 1027),
    Asset(
        "tether",
        "USDT",
        "tether",
        825,
        (
            (_ETH, "0xdac17f958d2ee523a2206206994597c13d831ec7"),
            ("bsc", "0x55d398326f99059ff775485246999027b3197955"),
        ),
    ),
    Asset(
        "usd-coin",
        "USDC",
        "usd-coin",
        3408,
        (
            (_ETH, "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"),
            ("solana", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"),
        ),
    ),
    Asset("weth", "WETH", "weth", 2396, ((_ETH, "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"),)),
    Asset("pepe", "PEPE", "pepe", 24478, ((_ETH, "0x6982508145454ce325ddbe47a25d4ec3d2311933"),)),
    Asset(
        "wrapped-bitcoin",
        "WBTC",
        "wrapped-bitcoin",
        3717,
        ((_ETH, "0x2260fac5e5542a773aa44fbcfedf7c193bc2c599"),),
    ),
    Asset(
        "wrapped-solana",
        "WSOL",
        "wrapped-solana",
        16116,
        (("solana", "So11111111111111111111111111111111111111112"),),
    ),
    Asset("binancecoin", "BNB", "binancecoin", 1839),
    Asset("solana", "SOL", "solana", 5426),
    Asset("ripple", "XRP", "ripple", 52),
    Asset("dogecoin", "DOGE", "dogecoin", 74),
    Asset("cardano", "ADA", "cardano", 2010),
    Asset("litecoin", "LTC", "litecoin", 2),
    Asset("algorand", "ALGO", "algorand", 4030),
    Asset("matic-network", "MATIC", "matic-network", 3890),
    Asset("nkn", "NKN", "nkn", 2780),
    Asset("band-protocol", "BAND", "band-protocol", 4679),
    Asset("first-digital-usd", "FDUSD", "first-digital-usd", 26081),
    Asset("fiat:usd", "USD", fiat=True),
    Asset("fiat:eur", "EUR", fiat=True),
    Asset("fiat:gbp", "GBP", fiat=True),
    Asset("fiat:try", "TRY", fiat=True),
)

# Quote codes used to split concatenated venue symbols such as BTCUSDT (longest match first).
DEFAULT_QUOTES: tuple[str, ...] = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "EUR", "GBP", "TRY", "BTC", "ETH", "BNB",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Pool:
    """A DEX pool (pair contract) and its two tokens' contracts, all on ``chain``."""

    chain: str
    address: str
    base: str
    quote: str


DEFAULT_POOLS: tuple[Pool, ...] = (
    Pool(_ETH, "0xa43fe16908251ee70ef74718545e4fe6c5ccec9f",
         "0x6982508145454ce325ddbe47a25d4ec3d2311933", "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"),
    Pool(_ETH, "0x11b815efb8f581194ae79006d24e0d814b7697f6",
         "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", "0xdac17f958d2ee523a2206206994597c13d831ec7"),
    Pool(_ETH, "0xcbcdf9626bc03e24f779434178a73a0b4bad62ed",
         "0x2260fac5e5542a773aa44fbcfedf7c193bc2c599", "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"),
    Pool("solana", "58oQChx4yWmvKdwLLZzBi4ChoCc2fqCUWBkwMihLYQo2",
         "So11111111111111111111111111111111111111112", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"),
)  # fmt: skip
"""Mainnet pools whose tokens the sources do not name (CoinGecko's on-chain trades and OHLCV
carry only the pool): PEPE/WETH (Uniswap v2), WETH/USDT and WBTC/WETH (Uniswap v3), SOL/USDC
(Raydium). More come from ``NORMALIZER_REGISTRY_FILE`` (``"pools"``)."""


@dataclass(frozen=True, slots=True)
class Instrument:
    """A venue instrument resolved to canonical codes (``symbol`` is ``BASE-QUOTE``)."""

    symbol: str
    base: str
    quote: str
    asset_id: str | None
    native: str


@dataclass
class Registry:
    """Lookups from source identifiers to canonical assets. Build once; read-only after."""

    assets: Iterable[Asset] = DEFAULT_ASSETS
    quotes: tuple[str, ...] = DEFAULT_QUOTES
    pools: Iterable[Pool] = DEFAULT_POOLS
    unmapped: set[str] = field(default_factory=set)
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    new_instruments: dict[tuple[str, str], Instrument] = field(
        default_factory=dict, repr=False, compare=False
    )
    """Venue instruments resolved for the first time, (venue, native) -> instrument: the
    caller announces each when the first valid event of it is published, and removes it."""
    """Parsers' hot-path caches derived from this registry's lookups (bounded by the parsers)."""

    def __post_init__(self) -> None:
        self._by_id: dict[str, Asset] = {}
        self._by_code: dict[str, Asset] = {}
        self._by_cg: dict[str, Asset] = {}
        self._by_cmc: dict[int, Asset] = {}
        self._by_contract: dict[tuple[str, str], Asset] = {}
        self._instruments: dict[tuple[str, str], Instrument] = {}
        self._cg_codes: dict[str, str] = {}
        self._contract_codes: dict[tuple[str, str], str] = {}
        self._pools: dict[tuple[str, str], Pool] = {}
        for asset in self.assets:
            self.add(asset)
        for pool in self.pools:
            self.add_pool(pool)
        self.quotes = tuple(sorted(self.quotes, key=len, reverse=True))

    def add(self, asset: Asset) -> None:
        self._by_id[asset.id] = asset
        # A venue code identifies one asset per registry; a second asset with the same code
        # does not replace the first (venue codes are curated, not inferred from symbols).
        self._by_code.setdefault(asset.code, asset)
        if asset.coingecko:
            self._by_cg[asset.coingecko] = asset
        if asset.cmc is not None:
            self._by_cmc[asset.cmc] = asset
        for chain, contract in asset.platforms:
            self._by_contract[(chain.lower(), contract_address(contract))] = asset

    def add_pool(self, pool: Pool) -> None:
        chain = pool.chain.lower()
        self._pools[(chain, contract_address(pool.address))] = Pool(
            chain,
            contract_address(pool.address),
            contract_address(pool.base),
            contract_address(pool.quote),
        )

    @classmethod
    def from_file(cls, path: Path | None) -> Registry:
        """The default registry, extended by a JSON file ``{"assets": [...], "quotes": [...],
        "pools": [{"network", "address", "base", "quote"}]}`` (pool tokens as contracts)."""
        registry = cls()
        if path is None:
            return registry
        data: dict[str, Any] = json.loads(path.read_text())
        for item in data.get("assets", []):
            platforms = tuple((c, a) for c, a in item.get("platforms", {}).items())
            registry.add(
                Asset(
                    id=item["id"],
                    code=item["code"].upper(),
                    coingecko=item.get("coingecko"),
                    cmc=item.get("cmc"),
                    platforms=platforms,
                    fiat=bool(item.get("fiat", False)),
                )
            )
        for item in data.get("pools", []):
            registry.add_pool(Pool(item["network"], item["address"], item["base"], item["quote"]))
        if data.get("quotes"):
            registry.quotes = tuple(
                sorted({*registry.quotes, *data["quotes"]}, key=len, reverse=True)
            )
        return registry

    # -- assets --------------------------------------------------------------------------
    def asset(self, asset_id: str) -> Asset | None:
        return self._by_id.get(asset_id)

    def _report(self, ident: str) -> None:
        if len(self.unmapped) < 10_000:
            self.unmapped.add(ident)

    def by_coingecko(self, cg_id: str) -> str:
        """Canonical id for a CoinGecko id; unknown ids stay namespaced (``coingecko:<id>``)."""
        asset = self._by_cg.get(cg_id)
        if asset is not None:
            return asset.id
        self._report(f"coingecko:{cg_id}")
        return f"coingecko:{cg_id}"

    def learn_coingecko_code(self, cg_id: str, code: str) -> None:
        """Remember the ticker CoinGecko gives an id (``/coins/markets``, ``/coins/{id}``) for
        endpoints that carry none (``/simple/price``)."""
        if code and len(self._cg_codes) < 100_000:
            self._cg_codes[cg_id] = code

    def coingecko_code(self, cg_id: str) -> str:
        """The code of a CoinGecko id: the registry's, else the ticker learned from CoinGecko,
        else one derived from the id (``code_from_id``)."""
        asset = self._by_cg.get(cg_id)
        if asset is not None:
            return asset.code
        return self._cg_codes.get(cg_id) or code_from_id(cg_id)

    def cmc_code(self, cmc_id: int) -> str:
        """The code of a CMC id: the registry's, else one derived from the id (``CMC.123``)."""
        asset = self._by_cmc.get(cmc_id)
        return asset.code if asset is not None else code_from_id(f"cmc-{cmc_id}")

    def by_cmc(self, cmc_id: int) -> str:
        asset = self._by_cmc.get(cmc_id)
        if asset is not None:
            return asset.id
        self._report(f"cmc:{cmc_id}")
        return f"cmc:{cmc_id}"

    def by_contract(self, chain: str, contract: str) -> str:
        key = (chain.lower(), contract_address(contract))
        asset = self._by_contract.get(key)
        if asset is not None:
            return asset.id
        self._report(f"dex:{key[0]}:{key[1]}")
        return f"dex:{key[0]}:{key[1]}"

    def code_for(self, asset_id: str | None, ticker: str) -> str:
        """The code to put in a symbol for an asset a source named ``ticker``: the registry's
        own code when the id resolved to a registry asset (a DEX's ``SOL`` that is wrapped SOL
        is ``WSOL``, never the ``SOL`` of the native coin), else the source's ticker."""
        asset = self._by_id.get(asset_id) if asset_id is not None else None
        return asset.code if asset is not None else ticker

    def learn_contract_code(self, chain: str, contract: str, code: str) -> None:
        """Remember the ticker a source gives a token contract (a DEX swap names its tokens)
        for channels that carry only the address (token prices, OHLCV)."""
        key = (chain.lower(), contract_address(contract))
        if code and key not in self._by_contract and len(self._contract_codes) < 100_000:
            self._contract_codes[key] = code

    def contract_code(self, chain: str, contract: str) -> str:
        """The code of a token contract: the registry asset's, else the ticker learned from a
        source, else one derived from the address (never another token's ticker)."""
        key = (chain.lower(), contract_address(contract))
        asset = self._by_contract.get(key)
        if asset is not None:
            return asset.code
        return self._contract_codes.get(key) or code_from_id(key[1])

    def pool(self, chain: str, address: str) -> Pool | None:
        """A known pool (its tokens' contracts), or None."""
        return self._pools.get((chain.lower(), contract_address(address)))

    @staticmethod
    def code_of(code: str, codes: Mapping[str, str] | None = None) -> str:
        """A venue's currency code in canonical form: upper case, the venue's own legacy
        codes (``codes``, e.g. Kraken's ``XBT`` -> ``BTC``) replaced."""
        upper = code.upper()
        return codes.get(upper, upper) if codes else upper

    def asset_for_code(self, code: str) -> str | None:
        """Canonical asset of an exchange currency code (curated map; ``None`` if unknown)."""
        asset = self._by_code.get(code)
        return asset.id if asset else None

    # -- instruments ---------------------------------------------------------------------
    def instrument(
        self,
        venue: str,
        native: str,
        hint: str | None = None,
        codes: Mapping[str, str] | None = None,
    ) -> Instrument:
        """Resolve a venue symbol: ``BTCUSDT``, ``BTC-USD``, ``BTC/USD``, ``XBT/USD``.

        ``hint`` is a canonical ``BASE-QUOTE`` symbol (e.g. from the record key) used when a
        concatenated symbol cannot be split by the known quote codes; ``codes`` are the
        venue's own codes that differ from the canonical ones (its parser knows them).
        """
        cached = self._instruments.get((venue, native))
        if cached is not None:
            return cached
        base, quote = self._split(venue, native, hint)
        base, quote = self.code_of(base, codes), self.code_of(quote, codes)
        asset_id = self.asset_for_code(base)
        if asset_id is None:
            self._report(f"{venue}:{base}")
        inst = Instrument(f"{base}-{quote}", base, quote, asset_id, native)
        if len(self._instruments) < 100_000:
            self._instruments[(venue, native)] = inst
            self.new_instruments[(venue, native)] = inst
        return inst

    def _split(self, venue: str, native: str, hint: str | None) -> tuple[str, str]:
        for sep in ("-", "/", "_"):
            if sep in native:
                base, _, quote = native.partition(sep)
                if base and quote and sep not in quote:
                    return base, quote
                raise UnknownInstrumentError(f"{venue} symbol {native!r} has an unexpected form")
        upper = native.upper()
        if hint and "-" in hint:
            hb, _, hq = hint.partition("-")
            if (hb + hq).upper() == upper:
                return hb, hq
        for quote in self.quotes:
            if upper.endswith(quote) and len(upper) > len(quote):
                return upper[: -len(quote)], quote
        raise UnknownInstrumentError(
            f"{venue} symbol {native!r} has no known quote currency; add it to the registry"
        )
