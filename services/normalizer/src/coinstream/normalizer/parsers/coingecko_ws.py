"""CoinGecko WebSocket (``coingecko-ws``): C1, G1, G2, G3 pushes as published by ingest-ws.

- C1 ``CGSimplePrice`` -> aggregate ``PriceEvent`` ``<CODE>-<VS>`` (price, market cap, 24 h
  volume in the vs currency, 24 h change in percent), asset id from the CoinGecko id. ``vs`` is
  absent in older pushes (then USD); ``t`` is seconds, an integer or (older) a float.
- G1 ``OnchainSimpleTokenPrice`` -> aggregate ``<CODE>-USD`` of a token identified by network +
  contract (``network``, ``contract_address``), with market cap, 24 h volume and change.
- G2 ``OnchainTrade`` -> trade ``<BASE>-<QUOTE>`` in the pool's own terms: ``size`` is the base
  amount (``to``), ``quote_size`` the quote amount (``toq``), ``price`` their ratio, ``side``
  from ``ty``, with ``network``, ``pool_address`` and ``tx_hash``; ``t`` is milliseconds. Older
  pushes have no ``toq``: then the trade is ``<BASE>-USD`` at ``pu`` and ``quote_size`` is the
  USD volume ``vo``. The pool's tokens come from the registry (the push names only the pool).
- G3 ``OnchainOHLCV`` -> ``CandleEvent`` ``<TOKEN>-USD`` of the pool's base or quote token
  (``to``), candle open ``t`` in seconds (see ``onchain.source_candle``).

Channel codes are read from ``c`` or ``ch`` (G3 uses ``ch``; older G2 pages too), else the push
is recognised by its keys. Numbers may be JSON numbers (read as exact decimals) or strings;
any field may be null (a push without a price yields nothing). Greetings, confirmations,
acks and pings are ignored; error frames (``code`` >= 4000, rejections) are dead-lettered.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from coinstream.normalizer.errors import ParseError
from coinstream.normalizer.identity import Registry
from coinstream.normalizer.parsers import onchain
from coinstream.normalizer.parsers.common import (
    AnyEvent,
    ParserPlugin,
    channel_error,
    price,
)
from coinstream.normalizer.values import (
    TimeUnit,
    as_dict,
    fit_decimal,
    loads,
    opt_decimal,
    opt_time,
    parse_time,
    require,
)
from coinstream.schemas import PriceEvent, deterministic_id
from coinstream.schemas.fastenvelope import Envelope

SOURCE = "coingecko-ws"
C1, G1, G2, G3 = "CGSimplePrice", "OnchainSimpleTokenPrice", "OnchainTrade", "OnchainOHLCV"
CODES = {"C1": C1, "G1": G1, "G2": G2, "G3": G3}
IGNORED = frozenset(
    {"welcome", "ping", "confirm_subscription", "ack", "connected", "disconnect", "control"}
)
ERRORS = frozenset({"error", "reject_subscription"})
NETWORKS = {
    "eth": "ethereum",
    "polygon_pos": "polygon",
    "avax": "avalanche",
    "arbitrum": "arbitrum",
    "optimism": "optimism",
    "sui-network": "sui",
}
"""GeckoTerminal network ids that differ from Coinstream's chain names (``bsc``, ``solana``,
``base``... are the same); an id not listed is used as it is."""
SIDES = {"b": "buy", "s": "sell"}


def chain_of(network: str) -> str:
    network = network.strip().lower()
    return NETWORKS.get(network, network)


def parse(env: Envelope, registry: Registry, hint: str | None = None) -> list[AnyEvent]:
    channel = env.channel
    if channel in IGNORED:
        return []
    if channel in ERRORS:
        raise ParseError(f"{SOURCE} error frame: {env.payload[:300]}")
    if channel not in (C1, G1, G2, G3):
        raise channel_error(env)
    msg = as_dict(loads(env.payload), f"{SOURCE} push")
    code = msg.get("ch") if isinstance(msg.get("ch"), str) else msg.get("c")
    named = CODES.get(code) if isinstance(code, str) else None
    if named is not None and named != channel:
        raise ParseError(f"{SOURCE} push with channel code {code!r} on channel {channel!r}")
    if channel == C1:
        return _simple_price(env, registry, msg)
    if channel == G1:
        return _token_price(env, registry, msg)
    if channel == G2:
        return _trade(env, registry, msg)
    return _ohlcv(env, registry, msg)


def _time(value: Any, unit: TimeUnit, env: Envelope) -> datetime:
    return opt_time(value, unit, "t") or env.received_at


def _simple_price(env: Envelope, registry: Registry, d: dict[str, Any]) -> list[AnyEvent]:
    coin = str(require(d, "i", f"{SOURCE} C1 push"))
    value = opt_decimal(d.get("p"), "p")
    if value is None or value.is_zero():
        return []  # nothing to publish without a price
    vs = str(d.get("vs") or "usd").upper()
    event_time = _time(d.get("t"), "s", env)
    asset_id = registry.by_coingecko(coin)
    code = registry.coingecko_code(coin)
    return [
        price(
            kind="aggregate",
            source=SOURCE,
            event_id=deterministic_id("aggregate", SOURCE, asset_id, vs, event_time.isoformat()),
            event_time=event_time,
            received_at=env.received_at,
            symbol=f"{code}-{vs}",
            base=code,
            quote=vs,
            asset_id=asset_id,
            native_symbol=coin,
            price=value,
            market_cap=opt_decimal(d.get("m"), "m"),
            quote_volume_24h=opt_decimal(d.get("v"), "v"),
            change_24h_pct=opt_decimal(d.get("pp"), "pp"),
        )
    ]


def _token_price(env: Envelope, registry: Registry, d: dict[str, Any]) -> list[AnyEvent]:
    chain = chain_of(str(require(d, "n", f"{SOURCE} G1 push")))
    tok = onchain.token(registry, chain, str(require(d, "ta", f"{SOURCE} G1 push")))
    value = opt_decimal(d.get("p"), "p")
    if value is None or value.is_zero():
        return []
    event_time = _time(d.get("t"), "s", env)
    return [
        PriceEvent(
            event_id=deterministic_id(
                "aggregate", SOURCE, chain, tok.contract, "USD", event_time.isoformat()
            ),
            event_time=event_time,
            received_at=env.received_at,
            source=SOURCE,
            kind="aggregate",
            symbol=f"{tok.code}-USD",
            base=tok.code,
            quote="USD",
            asset_id=tok.asset_id,
            native_symbol=f"{d['n']}:{tok.contract}",
            price=value,
            market_cap=opt_decimal(d.get("m"), "m"),
            quote_volume_24h=opt_decimal(d.get("v"), "v"),
            change_24h_pct=opt_decimal(d.get("pp"), "pp"),
            network=chain,
            contract_address=tok.contract,
        )
    ]


def _trade(env: Envelope, registry: Registry, d: dict[str, Any]) -> list[AnyEvent]:
    where = f"{SOURCE} G2 push"
    chain = chain_of(str(require(d, "n", where)))
    pool_address = str(require(d, "pa", where))
    pool = onchain.pool(registry, SOURCE, chain, pool_address)
    tx = str(require(d, "tx", where))
    side = SIDES.get(str(d.get("ty")))
    base_amount = opt_decimal(d.get("to"), "to")
    quote_amount = opt_decimal(d.get("toq"), "toq")
    event_time = parse_time(require(d, "t", where), "ms", "t")
    base = onchain.token(registry, chain, pool.base)
    quote_size: Decimal | None
    if quote_amount is not None:
        quote = onchain.token(registry, chain, pool.quote)
        quote_code, quote_size = quote.code, quote_amount
        value = fit_decimal(quote_amount / base_amount) if base_amount else None
    else:  # older pushes: no quote amount, so priced in USD with the USD volume
        quote_code, quote_size = "USD", opt_decimal(d.get("vo"), "vo")
        value = opt_decimal(d.get("pu"), "pu")
    if value is None or value.is_zero() or base_amount is None:
        return []
    return [
        PriceEvent(
            event_id=deterministic_id(
                "trade", SOURCE, chain, pool.address, tx, side, base_amount, quote_amount
            ),
            event_time=event_time,
            received_at=env.received_at,
            source=SOURCE,
            kind="trade",
            symbol=f"{base.code}-{quote_code}",
            base=base.code,
            quote=quote_code,
            asset_id=base.asset_id,
            native_symbol=f"{d['n']}:{pool.address}",
            price=value,
            size=base_amount,
            side=side,
            network=chain,
            pool_address=pool.address,
            tx_hash=tx,
            quote_size=quote_size,
        )
    ]


def _ohlcv(env: Envelope, registry: Registry, d: dict[str, Any]) -> list[AnyEvent]:
    where = f"{SOURCE} G3 push"
    chain = chain_of(str(require(d, "n", where)))
    pool = onchain.pool(registry, SOURCE, chain, str(require(d, "pa", where)))
    side = str(d.get("to") or "base")
    if side not in ("base", "quote"):
        raise ParseError(f"{where} token {side!r} is neither base nor quote")
    tok = onchain.token(registry, chain, pool.base if side == "base" else pool.quote)
    interval = str(require(d, "i", where))
    values = [opt_decimal(d.get(k), k) for k in ("o", "h", "l", "c", "v")]
    t = d.get("t")
    if t is None or any(v is None for v in values):
        return []  # a candle with a missing figure says nothing reliable
    o, h, low, c, v = values
    assert o is not None and h is not None and low is not None and c is not None
    assert v is not None
    return [
        onchain.source_candle(
            env,
            SOURCE,
            id_parts=(chain, pool.address, side),
            symbol=f"{tok.code}-USD",
            interval=interval,
            open_time=parse_time(t, "s", "t"),
            ohlc=(o, h, low, c),
            quote_volume=v,
            network=chain,
            pool_address=pool.address,
            contract=tok.contract,
        )
    ]


PLUGIN = ParserPlugin(parse)
"""The entry point (an aggregator: its trades are DEX swaps, never consolidated)."""
