"""Identity, keys, market types, placeholders and units, table-driven on payloads shaped like
the vendors' documented responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from coinstream.normalizer.identity import Asset, Registry, code_from_id, contract_address
from coinstream.normalizer.parsers import PARSERS
from coinstream.schemas import AssetMetadataEvent, Event, PriceEvent

from .normalizer_helpers import RECEIVED, env, wire

# -- contract addresses per chain family -------------------------------------------------


@pytest.mark.parametrize(
    ("address", "stored"),
    [
        # EVM: hex, case-insensitive (EIP-55 mixed case is a checksum only)
        (
            "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
            "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",
        ),
        (
            "0X6982508145454CE325DDBE47A25D4EC3D2311933",
            "0x6982508145454ce325ddbe47a25d4ec3d2311933",
        ),
        # Starknet / Aptos: longer hex, still case-insensitive
        ("0x049D36570D4e46f48e99674bd3fcc84644DdD6b96F7C741B1562B82f9e004dC7",) * 1
        + ("0x049d36570d4e46f48e99674bd3fcc84644ddd6b96f7c741b1562b82f9e004dc7",),
        # Solana base58: case-sensitive
        (
            "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
            "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
        ),
        # Tron base58
        ("TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"),
        # Cosmos denoms: factory subdenoms and IBC hashes keep their case
        (
            "factory/osmo1z0qrq605sjgcqpylfl4aa6s90x738j7m58wyatt0tdzflg2ha26q67k743/wBTC",
            "factory/osmo1z0qrq605sjgcqpylfl4aa6s90x738j7m58wyatt0tdzflg2ha26q67k743/wBTC",
        ),
        (
            "ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2",
            "ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2",
        ),
        # Sui type tag: not a bare hex address
        ("0x2::sui::SUI", "0x2::sui::SUI"),
        # Bitcoin-like
        ("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"),
        ("  0xAbC  ", "0xabc"),
    ],
)
def test_contract_addresses_are_normalized_per_chain_family(address: str, stored: str) -> None:
    assert contract_address(address) == stored


def test_case_sensitive_addresses_name_different_tokens() -> None:
    mint = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
    registry = Registry(assets=[Asset("usd-coin", "USDC", platforms=(("solana", mint),))])
    assert registry.by_contract("Solana", mint) == "usd-coin"
    assert registry.by_contract("solana", mint.lower()) == f"dex:solana:{mint.lower()}"
    evm = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
    registry = Registry(assets=[Asset("tether", "USDT", platforms=(("ethereum", evm),))])
    assert registry.by_contract("ethereum", evm.lower()) == "tether"


def test_cmc_dex_solana_pair_keeps_its_case() -> None:
    mint = "7GCihgDB8fe6KNjn2MYtkzZcRjQy3t9GHdC8uHYmW2hr"
    pair = {
        "contract_address": "Hs97TCZeuYiJxooo3U73qEHXg3dKpRL4uYKYRryEK9CF",
        "name": "POPCAT/SOL",
        "base_asset_symbol": "POPCAT",
        "base_asset_contract_address": mint,
        "quote_asset_symbol": "SOL",
        "quote_asset_contract_address": "So11111111111111111111111111111111111111112",
        "network_slug": "Solana",
        "dex_slug": "raydium",
        "last_updated": "2024-05-01T10:00:00.000Z",
        "quote": [
            {
                "convert_id": "2781",
                "price": 0.35,
                "percent_change_price_24h": -0.0102,
                "last_updated": "2024-05-01T10:00:00.000Z",
            }
        ],
    }
    events = parse("cmc-dex", "/v4/dex/spot-pairs/latest", [pair])
    [usd] = [e for e in events if isinstance(e, PriceEvent)]
    [meta] = [e for e in events if isinstance(e, AssetMetadataEvent)]
    assert usd.asset_id == f"dex:solana:{mint}"
    assert meta.entity_id == "dex_pair:solana:Hs97TCZeuYiJxooo3U73qEHXg3dKpRL4uYKYRryEK9CF"
    # a fraction on the wire (-0.0102), a percent in the event
    assert usd.change_24h_pct == Decimal("-1.0200")


# -- ids the registry lacks, and two coins with one ticker ----------------------------------


def parse(source: str, channel: str, payload: Any, registry: Registry | None = None) -> list[Event]:
    registry = registry or Registry()
    params = {"vs_currency": "usd"} if channel == "/coins/markets" else None
    events = PARSERS[source](env(source, channel, payload, params=params), registry, None)
    return [wire(e) for e in events]


SIMPLE = {
    "bitcoin": {"usd": 97000.5, "last_updated_at": 1780000000},
    "uniswap": {"usd": 7.51, "last_updated_at": 1780000000},
    "some-new-coin": {"usd": 0.0042, "usd_24h_change": 12.5, "last_updated_at": 1780000000},
}
MARKETS = [
    {"id": "uniswap", "symbol": "uni", "name": "Uniswap", "current_price": 7.51},
    {"id": "universe-2", "symbol": "uni", "name": "Universe", "current_price": 0.002},
]


@pytest.mark.parametrize(
    ("learned", "coin", "symbol", "asset_id"),
    [
        (False, "bitcoin", "BTC-USD", "bitcoin"),
        (False, "uniswap", "UNISWAP-USD", "coingecko:uniswap"),
        (False, "some-new-coin", "SOME.NEW.COIN-USD", "coingecko:some-new-coin"),
        (True, "uniswap", "UNI-USD", "coingecko:uniswap"),
    ],
)
def test_simple_price_publishes_ids_the_registry_lacks(
    learned: bool, coin: str, symbol: str, asset_id: str
) -> None:
    """Each configured id gives a price: under its namespaced id, with the ticker CoinGecko
    gave it elsewhere (/coins/markets) or a code derived from the id, and it is reported."""
    registry = Registry()
    if learned:
        parse("coingecko", "/coins/markets", MARKETS, registry)
    events = {e.native_symbol: e for e in parse("coingecko", "/simple/price", SIMPLE, registry)}  # type: ignore[union-attr]
    event = events[coin]
    assert isinstance(event, PriceEvent)
    assert (event.symbol, event.asset_id) == (symbol, asset_id)
    if asset_id != "bitcoin":
        assert asset_id in registry.unmapped
        assert event.key == f"{symbol}|{asset_id}".encode()
    else:
        assert event.key == b"BTC-USD"


def test_two_coins_with_one_ticker_never_share_a_key() -> None:
    registry = Registry(assets=[Asset("uniswap", "UNI", "uniswap", 7083)])
    prices = [
        e
        for e in parse("coingecko", "/coins/markets", MARKETS, registry)
        if isinstance(e, PriceEvent)
    ]
    assert [p.symbol for p in prices] == ["UNI-USD", "UNI-USD"]  # what people read
    assert [p.asset_id for p in prices] == ["uniswap", "coingecko:universe-2"]
    assert len({p.key for p in prices}) == 2
    metas = [
        e
        for e in parse("coingecko", "/coins/markets", MARKETS, registry)
        if isinstance(e, AssetMetadataEvent)
    ]
    assert len({m.entity_id for m in metas}) == 2


@pytest.mark.parametrize(
    ("ident", "code"),
    [("uniswap-2", "UNISWAP.2"), ("a_b c", "A.B.C"), ("-weird", "X.WEIRD"), ("x" * 40, "X" * 32)],
)
def test_codes_derived_from_ids_fit_the_code_grammar(ident: str, code: str) -> None:
    assert code_from_id(ident) == code


# -- market type and exchange time ----------------------------------------------------------

T_MS = 1780000000123
SPOT_BOOK = {"u": 400900217, "s": "BNBUSDT", "b": "25.35", "B": "31.21", "a": "25.36", "A": "40.66"}
FUTURES = {"e": "bookTicker", "E": T_MS + 2, "T": T_MS}


@pytest.mark.parametrize(
    ("data", "market", "symbol", "native", "timed"),
    [
        (SPOT_BOOK, None, "BNB-USDT", "BNBUSDT", False),
        ({**SPOT_BOOK, **FUTURES}, "perpetual", "BNB-USDT", "BNBUSDT", True),
        (
            {**SPOT_BOOK, **FUTURES, "s": "BTCUSD_PERP", "ps": "BTCUSD"},
            "perpetual",
            "BTC-USD",
            "BTCUSD_PERP",
            True,
        ),
        (
            {**SPOT_BOOK, **FUTURES, "s": "BTCUSDT_250328"},
            "future",
            "BTC-USDT",
            "BTCUSDT_250328",
            True,
        ),
    ],
)
def test_binance_book_ticker_market_type_and_time(
    data: dict[str, Any], market: str | None, symbol: str, native: str, timed: bool
) -> None:
    frame = {"stream": f"{data['s'].lower()}@bookTicker", "data": data}
    [event] = parse("binance", frame["stream"], json.dumps(frame))
    assert isinstance(event, PriceEvent) and event.kind == "quote"
    assert (event.market, event.symbol, event.native_symbol) == (market, symbol, native)
    expected_time = datetime.fromtimestamp(T_MS / 1000, UTC) if timed else RECEIVED
    assert event.event_time == expected_time
    assert event.key == (symbol if market is None else f"{symbol}|{market}").encode()


def test_spot_and_perpetual_quotes_of_one_symbol_differ_in_id_and_key() -> None:
    spot = parse(
        "binance",
        "bnbusdt@bookTicker",
        json.dumps({"stream": "bnbusdt@bookTicker", "data": SPOT_BOOK}),
    )
    perp = parse(
        "binance",
        "bnbusdt@bookTicker",
        json.dumps({"stream": "bnbusdt@bookTicker", "data": {**SPOT_BOOK, **FUTURES}}),
    )
    assert spot[0].event_id != perp[0].event_id
    assert spot[0].key != perp[0].key  # type: ignore[attr-defined]


# -- placeholder quotes ---------------------------------------------------------------------

EPOCH = "1970-01-01T00:00:00.000000Z"


def kraken_ticker(**d: Any) -> str:
    base = {"symbol": "ALGO/USD", "volume": 0.0, "vwap": 0.0, "change": 0.0, "change_pct": 0.0}
    return json.dumps({"channel": "ticker", "type": "snapshot", "data": [base | d]})


def coinbase_ticker(**t: Any) -> str:
    ticker = {"type": "ticker", "product_id": "BTC-USD", "price": "97000.01", "volume_24_h": "1"}
    return json.dumps(
        {
            "channel": "ticker",
            "timestamp": "2026-06-01T16:49:59.5Z",
            "sequence_num": 3,
            "events": [{"type": "snapshot", "tickers": [ticker | t]}],
        }
    )


@pytest.mark.parametrize(
    ("source", "channel", "payload", "expected"),
    [
        # an empty book and no trade: nothing at all
        (
            "kraken",
            "ticker",
            kraken_ticker(bid=0.0, bid_qty=0.0, ask=0.0, ask_qty=0.0, last=0.0, timestamp=EPOCH),
            None,
        ),
        ("kraken", "ticker", kraken_ticker(bid=0.0, bid_qty=0.0, ask=0.0, ask_qty=0.0), None),
        # a last trade but an empty book: the price, no bid or ask, and no 1970
        (
            "kraken",
            "ticker",
            kraken_ticker(bid=0, bid_qty=0, ask=0, ask_qty=0, last=0.2, timestamp=EPOCH),
            {"price": "0.2", "bid": None, "ask": None, "event_time": RECEIVED},
        ),
        # one empty side
        (
            "kraken",
            "ticker",
            kraken_ticker(bid=0.1, bid_qty=5, ask=0, ask_qty=0),
            {"bid": "0.1", "bid_size": "5", "ask": None, "ask_size": None},
        ),
        (
            "binance",
            "bnbusdt@bookTicker",
            json.dumps(
                {
                    "stream": "bnbusdt@bookTicker",
                    "data": {
                        **SPOT_BOOK,
                        "b": "0.00000000",
                        "B": "0.00000000",
                        "a": "0.00000000",
                        "A": "0.00000000",
                    },
                }
            ),
            None,
        ),
        (
            "binance",
            "bnbusdt@bookTicker",
            json.dumps(
                {
                    "stream": "bnbusdt@bookTicker",
                    "data": {**SPOT_BOOK, "a": "0.00000000", "A": "0.00000000"},
                }
            ),
            {"bid": "25.35", "ask": None},
        ),
        (
            "binance",
            "bnbusdt@ticker",
            json.dumps(
                {
                    "stream": "bnbusdt@ticker",
                    "data": {
                        "e": "24hrTicker",
                        "E": T_MS,
                        "s": "BNBUSDT",
                        "c": "0.00000000",
                        "Q": "0.00000000",
                        "b": "0.00000000",
                        "B": "0",
                        "a": "0.00000000",
                        "A": "0",
                        "v": "0",
                        "q": "0",
                        "P": "0",
                    },
                }
            ),
            None,
        ),
        (
            "coinbase",
            "ticker",
            coinbase_ticker(
                best_bid="0", best_bid_quantity="0", best_ask="0", best_ask_quantity="0"
            ),
            {"price": "97000.01", "bid": None, "ask": None},
        ),
        ("coinbase", "ticker", coinbase_ticker(price="0", best_bid="0", best_ask="0"), None),
    ],
)
def test_placeholder_quotes_are_no_quote(
    source: str, channel: str, payload: str, expected: dict[str, Any] | None
) -> None:
    events = parse(source, channel, payload)
    if expected is None:
        assert events == []
        return
    [event] = events
    for name, value in expected.items():
        got = getattr(event, name)
        assert (str(got) if isinstance(got, Decimal) else got) == value, name
    assert event.event_time.year > 2009


def test_a_resolved_asset_is_named_by_its_registry_code() -> None:
    """A DEX pair's base ticker "SOL" on the wrapped-SOL contract is wrapped SOL: its symbol
    uses the registry's code, so it never shares SOL-USD (and its key) with the native coin."""
    pair = {
        "contract_address": "58oQChx4yWmvKdwLLZzBi4ChoCc2fqCUWBkwMihLYQo2",
        "name": "SOL/USDC",
        "base_asset_symbol": "SOL",
        "base_asset_contract_address": "So11111111111111111111111111111111111111112",
        "quote_asset_symbol": "USDC",
        "quote_asset_contract_address": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
        "network_slug": "solana",
        "quote": [{"convert_id": "2781", "price": 142.5, "last_updated": "2024-05-01T10:00:00Z"}],
    }
    [usd] = [
        e
        for e in parse("cmc-dex", "/v4/dex/spot-pairs/latest", [pair])
        if isinstance(e, PriceEvent)
    ]
    assert (usd.symbol, usd.asset_id, usd.key) == ("WSOL-USD", "wrapped-solana", b"WSOL-USD")
