"""CoinMarketCap DEX API v4 (``/cmc/v4/dex/...``): spot pairs latest and pair quotes latest.

Bodies follow the spec shape (``DexSpotPairDTO``): ids are strings, ``quote`` is an array of
``{convert_id, price, ...}``, each pair carries a ``scroll_id``; the envelope is the usual CMC
``{"data": [...], "status": {...}}``. Paging: a page holds ``limit`` pairs; pass the last
pair's ``scroll_id`` to get the next page. Prices follow the fair values of PEPE, ETH, SOL and
BTC ``LAG`` behind (on-chain pools re-price as arbitrage reaches them).
Set ``sim.faults["cmc-dex.quote_as_map"] = True`` to emit ``quote`` as a map keyed by convert
id instead. Keys and faults as for CoinMarketCap, under provider name ``cmc-dex``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from coinstream.marketsim.app import Simulator
from coinstream.marketsim.assets import BY_SYMBOL
from coinstream.marketsim.coinmarketcap import error_response, gate, status_object
from coinstream.marketsim.fairvalue import AggregatorProfile
from coinstream.marketsim.rest import (
    change_24h_pct,
    iso_ms,
    json_response,
    price,
    sim_of,
)

PROVIDER = "cmc-dex"
PREFIX = "/cmc/v4/dex"
LAG = AggregatorProfile(delay_s=2.0, window_s=3.0)
"""DEX pools quote the fair value of 2 to 5 seconds ago (averaged)."""


@dataclass(frozen=True, slots=True)
class Pair:
    contract_address: str
    network_id: str
    network_slug: str
    dex_id: str
    dex_slug: str
    base: str
    base_contract: str
    quote: str
    quote_contract: str
    quote_usd_symbol: str | None  # market symbol whose price is the quote asset's USD price
    pooled_base: float


PAIRS: tuple[Pair, ...] = (
    Pair(
        "0xa43fe16908251ee70ef74718545e4fe6c5ccec9f",
        "1",
        "ethereum",
        "1348",
        "uniswap-v2",
        "PEPE",
        "0x6982508145454ce325ddbe47a25d4ec3d2311933",
        "WETH",
        "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
        "ETH",
        2.1e12,
    ),
    Pair(
        "0x11b815efb8f581194ae79006d24e0d814b7697f6",
        "1",
        "ethereum",
        "1348",
        "uniswap-v3",
        "WETH",
        "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
        "USDT",
        "0xdac17f958d2ee523a2206206994597c13d831ec7",
        None,
        5200.0,
    ),
    Pair(
        "0xcbcdf9626bc03e24f779434178a73a0b4bad62ed",
        "1",
        "ethereum",
        "1348",
        "uniswap-v3",
        "WBTC",
        "0x2260fac5e5542a773aa44fbcfedf7c193bc2c599",
        "WETH",
        "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
        "ETH",
        310.0,
    ),
    Pair(
        "58oQChx4yWmvKdwLLZzBi4ChoCc2fqCUWBkwMihLYQo2",
        "16",
        "solana",
        "1342",
        "raydium",
        "SOL",
        "So11111111111111111111111111111111111111112",
        "USDC",
        "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
        None,
        88000.0,
    ),
)
_UNDERLYING = {"WETH": "ETH", "WBTC": "BTC"}


def _usd(sim: Simulator, symbol: str) -> float:
    asset = BY_SYMBOL.get(_UNDERLYING.get(symbol, symbol))
    return 1.0 if asset is None else float(price(sim, asset, LAG))


def pair_payload(sim: Simulator, pair: Pair, index: int, quote_as_map: bool) -> dict[str, Any]:
    base_usd = _usd(sim, pair.base)
    quote_usd = _usd(sim, pair.quote)
    asset = BY_SYMBOL.get(_UNDERLYING.get(pair.base, pair.base))
    change = change_24h_pct(sim, asset, LAG) if asset else 0.0
    liquidity = pair.pooled_base * base_usd * 2
    quote = {
        "convert_id": "2781",
        "price": base_usd,
        "price_by_quote_asset": base_usd / quote_usd,
        "liquidity": liquidity,
        "volume_24h": liquidity * 0.4,
        # fractions, as CMC's DEX API sends them (0.0123 is +1.23 %)
        "percent_change_price_1h": change / 2400,
        "percent_change_price_24h": change / 100,
        "fully_diluted_value": base_usd * 1e9,
        "24h_buy_volume": liquidity * 0.21,
        "24h_sell_volume": liquidity * 0.19,
        "last_updated": iso_ms(),
    }
    return {
        "contract_address": pair.contract_address,
        "name": f"{pair.base}/{pair.quote}",
        "base_asset_id": str(BY_SYMBOL[_UNDERLYING.get(pair.base, pair.base)].cmc_id)
        if _UNDERLYING.get(pair.base, pair.base) in BY_SYMBOL
        else "0",
        "base_asset_ucid": str(asset.cmc_id) if asset else "0",
        "base_asset_name": pair.base,
        "base_asset_symbol": pair.base,
        "base_asset_contract_address": pair.base_contract,
        "quote_asset_id": "825"
        if pair.quote == "USDT"
        else "3408"
        if pair.quote == "USDC"
        else "1027",
        "quote_asset_ucid": "825"
        if pair.quote == "USDT"
        else "3408"
        if pair.quote == "USDC"
        else "1027",
        "quote_asset_name": pair.quote,
        "quote_asset_symbol": pair.quote,
        "quote_asset_contract_address": pair.quote_contract,
        "dex_id": pair.dex_id,
        "dex_slug": pair.dex_slug,
        "network_id": pair.network_id,
        "network_slug": pair.network_slug,
        "last_updated": iso_ms(),
        "created_at": "2023-04-14T00:00:00.000Z",
        "num_transactions_24h": 12000,
        "holders": 150000,
        "24h_no_of_buys": 6500,
        "24h_no_of_sells": 5500,
        "pool_base_asset": pair.pooled_base,
        "pool_quote_asset": pair.pooled_base * base_usd / quote_usd,
        "percent_pooled_base_asset": 50.0,
        "security_scan": [],
        "scroll_id": f"s{index + 1}",
        "quote": {"2781": quote} if quote_as_map else [quote],
    }


def _selected(request: web.Request) -> list[Pair]:
    network = request.query.get("network_slug")
    network_id = request.query.get("network_id")
    dex = request.query.get("dex_slug")
    return [
        p
        for p in PAIRS
        if (network is None or p.network_slug == network)
        and (network_id is None or p.network_id == network_id)
        and (dex is None or p.dex_slug == dex)
    ]


async def spot_pairs_latest(request: web.Request) -> web.Response:
    if (resp := await gate(request, PROVIDER)) is not None:
        return resp
    sim = sim_of(request)
    if "network_id" not in request.query and "network_slug" not in request.query:
        return json_response(
            {"status": status_object(400, '"network_id" or "network_slug" is required')}, 400
        )
    limit = max(1, int(request.query.get("limit", "100")))
    start = 0
    scroll = request.query.get("scroll_id")
    if scroll:
        try:
            start = int(scroll.lstrip("s"))
        except ValueError:
            return error_response(400, 400)
    as_map = bool(sim.faults.get(f"{PROVIDER}.quote_as_map"))
    pairs = list(enumerate(_selected(request)))[start : start + limit]
    data = [pair_payload(sim, p, start + i, as_map) for i, (_, p) in enumerate(pairs)]
    return json_response({"data": data, "status": status_object()})


async def pairs_quotes_latest(request: web.Request) -> web.Response:
    if (resp := await gate(request, PROVIDER)) is not None:
        return resp
    sim = sim_of(request)
    wanted = [c.lower() for c in request.query.get("contract_address", "").split(",") if c]
    if not wanted:
        return json_response({"status": status_object(400, '"contract_address" is required')}, 400)
    as_map = bool(sim.faults.get(f"{PROVIDER}.quote_as_map"))
    data = [
        pair_payload(sim, p, i, as_map)
        for i, p in enumerate(_selected(request))
        if p.contract_address.lower() in wanted
    ]
    return json_response({"data": data, "status": status_object()})


def setup(app: web.Application, sim: Simulator) -> None:
    app.router.add_get(f"{PREFIX}/spot-pairs/latest", spot_pairs_latest)
    app.router.add_get(f"{PREFIX}/pairs/quotes/latest", pairs_quotes_latest)
