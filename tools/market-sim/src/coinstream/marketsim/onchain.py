"""On-chain tokens, pools, swaps and candles that follow the simulated market.

The aggregator WebSocket simulators (CoinGecko ``coingecko-ws``, CoinMarketCap
``coinmarketcap-ws``) publish DEX data. Each pool here is driven by one market instrument: every
trade of that instrument becomes a swap in the pool (same size, same side, a deterministic
transaction hash), so pool prices, token prices and candles agree with the exchanges.
Token USD prices are their instrument's price (``WETH`` is ``ETH-USDT``) or 1 (stablecoins).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

from coinstream.marketsim.app import Simulator
from coinstream.marketsim.market import Trade

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


@dataclass(frozen=True, slots=True)
class Token:
    symbol: str
    chain: str  # Coinstream's chain name
    address: str
    usd_of: str | None  # market instrument whose price is this token's USD price; None: 1 USD
    supply: int = 0


@dataclass(frozen=True, slots=True)
class Pool:
    chain: str
    address: str
    dex: str
    base: Token
    quote: Token
    driver: str  # market instrument whose trades are this pool's swaps
    liquidity_usd: Decimal = Decimal("25000000")


NETWORK_IDS = {"ethereum": "eth", "bsc": "bsc", "solana": "solana"}
"""GeckoTerminal network ids (CoinGecko on-chain channels)."""
PLATFORM_IDS = {"ethereum": 1, "bsc": 14, "solana": 16}
"""CoinMarketCap platform ids (DEX channels)."""

WETH = Token(
    "WETH", "ethereum", "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", "ETH-USDT", 2_900_000
)
PEPE = Token("PEPE", "ethereum", "0x6982508145454ce325ddbe47a25d4ec3d2311933", "PEPE-USDT",
             420_690_000_000_000)  # fmt: skip
USDT_ETH = Token("USDT", "ethereum", "0xdac17f958d2ee523a2206206994597c13d831ec7", None, 10**11)
USDC_ETH = Token("USDC", "ethereum", "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", None, 10**10)
WBTC = Token("WBTC", "ethereum", "0x2260fac5e5542a773aa44fbcfedf7c193bc2c599", "BTC-USDT", 150_000)
WSOL = Token("SOL", "solana", "So11111111111111111111111111111111111111112", "SOL-USDT", 10**8)
USDC_SOL = Token("USDC", "solana", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", None, 10**10)
USDT_BSC = Token("USDT", "bsc", "0x55d398326f99059ff775485246999027b3197955", None, 5 * 10**9)
USDC_BSC = Token("USDC", "bsc", "0x8ac76a51cc950d9822d68b83fe1ad97b32cd580d", None, 10**9)
TOKENS: tuple[Token, ...] = (WETH, PEPE, USDT_ETH, USDC_ETH, WBTC, WSOL, USDC_SOL, USDT_BSC,
                             USDC_BSC)  # fmt: skip

POOLS: tuple[Pool, ...] = (
    Pool("ethereum", "0xa43fe16908251ee70ef74718545e4fe6c5ccec9f", "uniswap-v2", PEPE, WETH,
         "PEPE-USDT"),
    Pool("ethereum", "0x11b815efb8f581194ae79006d24e0d814b7697f6", "uniswap-v3", WETH, USDT_ETH,
         "ETH-USDT"),
    Pool("ethereum", "0xcbcdf9626bc03e24f779434178a73a0b4bad62ed", "uniswap-v3", WBTC, WETH,
         "BTC-USDT"),
    Pool("solana", "58oQChx4yWmvKdwLLZzBi4ChoCc2fqCUWBkwMihLYQo2", "raydium", WSOL, USDC_SOL,
         "SOL-USDT"),
)  # fmt: skip
"""Real mainnet pools (as CMC DEX lists them), driven by the simulated exchange trades."""


def same_address(chain: str, a: str, b: str) -> bool:
    """EVM hex addresses compare without case; base58 (Solana) is case-sensitive."""
    return a.lower() == b.lower() if a.startswith("0x") else a == b


def find_token(chain: str, address: str) -> Token | None:
    return next(
        (t for t in TOKENS if t.chain == chain and same_address(chain, t.address, address)), None
    )


def find_pool(chain: str, address: str) -> Pool | None:
    return next(
        (p for p in POOLS if p.chain == chain and same_address(chain, p.address, address)), None
    )


def chain_of_network(network: str) -> str | None:
    return next((c for c, n in NETWORK_IDS.items() if n == network), None)


def chain_of_platform(platform: int) -> str | None:
    return next((c for c, p in PLATFORM_IDS.items() if p == platform), None)


def usd(sim: Simulator, token: Token) -> Decimal:
    return sim.market.price(token.usd_of) if token.usd_of else Decimal(1)


@dataclass(frozen=True, slots=True)
class Swap:
    pool: Pool
    trade: Trade
    side: str  # buy/sell of the base token
    base_amount: Decimal
    quote_amount: Decimal
    base_usd: Decimal
    quote_usd: Decimal
    tx_hash: str
    log_index: int
    block: int

    @property
    def volume_usd(self) -> Decimal:
        return self.base_amount * self.base_usd


def _exact(value: Decimal, places: int = 18) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places)).normalize()


def swap(sim: Simulator, pool: Pool, trade: Trade) -> Swap:
    """The swap a market trade of ``pool.driver`` becomes."""
    base_usd = usd(sim, pool.base) if pool.base.usd_of != pool.driver else trade.price
    quote_usd = usd(sim, pool.quote)
    base_amount = trade.size
    quote_amount = _exact(base_amount * base_usd / quote_usd)
    digest = hashlib.blake2b(f"{pool.address}:{trade.trade_id}".encode(), digest_size=32)
    tx = base58(digest.digest() * 2) if pool.chain == "solana" else "0x" + digest.hexdigest()
    return Swap(pool, trade, trade.side, base_amount, quote_amount, base_usd, quote_usd, tx,
                trade.trade_id % 200, 19_000_000 + trade.trade_id // 10)  # fmt: skip


def pools_driven_by(symbol: str) -> list[Pool]:
    return [p for p in POOLS if p.driver == symbol]


@dataclass
class Candle:
    open_time: int  # seconds
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume_usd: Decimal = Decimal(0)

    def add(self, price: Decimal, volume_usd: Decimal) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume_usd += volume_usd


@dataclass
class CandleBook:
    """Open candles per (key, interval seconds); ``observe`` returns the candles it closed."""

    candles: dict[tuple[str, int], Candle] = field(default_factory=dict)

    def observe(
        self, key: str, interval: int, t: float, price: Decimal, volume_usd: Decimal
    ) -> Candle | None:
        start = int(t) // interval * interval
        current = self.candles.get((key, interval))
        closed = None
        if current is None or current.open_time < start:
            closed = current
            current = self.candles[(key, interval)] = Candle(start, price, price, price, price)
        current.add(price, volume_usd)
        return closed

    def current(self, key: str, interval: int, t: float, price: Decimal) -> Candle:
        """The open candle (a flat one at ``price`` if nothing traded in it yet)."""
        start = int(t) // interval * interval
        found = self.candles.get((key, interval))
        if found is None or found.open_time < start:
            found = self.candles[(key, interval)] = Candle(start, price, price, price, price)
        return found
