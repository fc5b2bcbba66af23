"""CoinMarketCap WebSocket (``coinmarketcap-ws``): market and DEX pushes as published by ingest-ws.

Every push is ``{"type":"data","channel","params","data","ts"}`` with times in milliseconds
(``ts``, ``ot``) and percents on a 0-100 scale. Routed by the envelope channel (ingest-ws
recognises untagged pushes by their keys; ``params`` may then be missing, so the token comes
from ``data.pid``/``data.a`` where it can).

- ``market@crypto_latest_price`` -> aggregate ``PriceEvent`` ``<CODE>-USD`` (quotes are USD
  only): ``p`` price, ``mc`` market cap, ``vu`` 24 h volume (its window is not stated; clients
  treat it as 24 h), ``p24h`` change in percent; asset id from the CMC id; the push's ``ts``.
- ``onchain@token_agg_event`` -> aggregate ``<CODE>-USD`` of the token (``ap``, the price
  aggregated over its pools; ``p``, one pool's, when ``ap`` is null) with ``network`` and
  ``contract_address``; time ``data.ts``.
- ``onchain@transaction`` -> trade ``<TOKEN0>-<TOKEN1>`` in the pair's terms: ``size`` = ``a0``,
  ``quote_size`` = ``a1``, ``price`` their ratio, ``side`` = ``tp`` (relative to the pair), with
  ``network``, ``pool_address`` (``pa``) and ``tx_hash``. The event id is the transaction and
  log index (``lgid``; ``iix`` on Solana), so the same swap pushed to both tokens'
  subscriptions is one event. Swaps CMC marks ``ex: true`` (excluded from its aggregates,
  reason in ``txtp``) are not market prices and yield nothing.
- ``onchain@kline`` -> ``CandleEvent`` ``<CODE>-USD`` (``ot`` open, ``vu`` USD volume; see
  ``onchain.source_candle``).

Tokens are identified by platform + contract through the registry (tickers ``t0s``/``t1s`` only
name a token the registry lacks, and are remembered for channels without tickers). Welcome,
acks and pongs are ignored; error frames are dead-lettered with their code.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from coinstream.normalizer.errors import ParseError
from coinstream.normalizer.identity import Registry, code_from_id, contract_address
from coinstream.normalizer.parsers import onchain
from coinstream.normalizer.parsers.common import (
    AnyEvent,
    ParserPlugin,
    channel_error,
    price,
)
from coinstream.normalizer.values import (
    as_dict,
    fit_decimal,
    loads,
    opt_decimal,
    opt_int,
    parse_time,
    require,
)
from coinstream.schemas import PriceEvent, deterministic_id, limits
from coinstream.schemas.fastenvelope import Envelope

SOURCE = "coinmarketcap-ws"
MARKET = "market@crypto_latest_price"
AGG, SWAPS, KLINE = "onchain@token_agg_event", "onchain@transaction", "onchain@kline"
IGNORED = frozenset({"welcome", "ack", "pong", "control"})
PLATFORMS = {1: "ethereum", 14: "bsc", 16: "solana"}
"""CMC platform ids -> Coinstream chain names; another id becomes ``cmc-platform-<id>``."""


def chain_of(platform: int) -> str:
    return PLATFORMS.get(platform, f"cmc-platform-{platform}")


def parse(env: Envelope, registry: Registry, hint: str | None = None) -> list[AnyEvent]:
    channel = env.channel
    if channel in IGNORED:
        return []
    if channel == "error":
        status = loads(env.payload).get("status") or {}
        raise ParseError(
            f"{SOURCE} error {status.get('error_code')}: {status.get('error_message')} "
            f"{status.get('error_detail') or ''}".strip()
        )
    if channel not in (MARKET, AGG, SWAPS, KLINE):
        raise channel_error(env)
    msg = as_dict(loads(env.payload), f"{SOURCE} push")
    data = as_dict(require(msg, "data", f"{SOURCE} push"), f"{SOURCE} data")
    raw_params = msg.get("params")
    params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
    if channel == MARKET:
        return _market(env, registry, msg, data)
    if channel == AGG:
        return _token_price(env, registry, params, data)
    if channel == SWAPS:
        return _swap(env, registry, data)
    return _kline(env, registry, params, data)


def _platform(params: dict[str, Any], data: dict[str, Any], where: str) -> str:
    pid = opt_int(params.get("platform_id", data.get("pid")), "platform_id")
    if pid is None:
        raise ParseError(f"{where} names no platform (params.platform_id or data.pid)")
    return chain_of(pid)


def _market(
    env: Envelope, registry: Registry, msg: dict[str, Any], d: dict[str, Any]
) -> list[AnyEvent]:
    cmc_id = opt_int(require(d, "cid", f"{SOURCE} market push"), "cid")
    value = opt_decimal(d.get("p"), "p")
    if cmc_id is None or value is None or value.is_zero():
        return []
    event_time = parse_time(require(msg, "ts", f"{SOURCE} market push"), "ms", "ts")
    asset_id = registry.by_cmc(cmc_id)
    code = registry.cmc_code(cmc_id)
    return [
        price(
            kind="aggregate",
            source=SOURCE,
            event_id=deterministic_id("aggregate", SOURCE, asset_id, "USD", msg["ts"]),
            event_time=event_time,
            received_at=env.received_at,
            symbol=f"{code}-USD",
            base=code,
            quote="USD",
            asset_id=asset_id,
            native_symbol=str(cmc_id),
            price=value,
            market_cap=opt_decimal(d.get("mc"), "mc"),
            quote_volume_24h=opt_decimal(d.get("vu"), "vu"),
            change_24h_pct=opt_decimal(d.get("p24h"), "p24h"),
        )
    ]


def _token_price(
    env: Envelope, registry: Registry, params: dict[str, Any], d: dict[str, Any]
) -> list[AnyEvent]:
    where = f"{SOURCE} token price push"
    chain = _platform(params, d, where)
    tok = onchain.token(registry, chain, str(d.get("a") or require(params, "address", where)))
    value = opt_decimal(d.get("ap"), "ap")
    if value is None:
        value = opt_decimal(d.get("p"), "p")
    if value is None or value.is_zero():
        return []
    ts = require(d, "ts", where)
    return [
        PriceEvent(
            event_id=deterministic_id("aggregate", SOURCE, chain, tok.contract, "USD", ts),
            event_time=parse_time(ts, "ms", "ts"),
            received_at=env.received_at,
            source=SOURCE,
            kind="aggregate",
            symbol=f"{tok.code}-USD",
            base=tok.code,
            quote="USD",
            asset_id=tok.asset_id,
            native_symbol=f"{chain}:{tok.contract}",
            price=value,
            network=chain,
            contract_address=tok.contract,
        )
    ]


def _ticker(registry: Registry, chain: str, contract: Any, symbol: Any) -> onchain.Token:
    """A pair token: the registry's, its ticker remembered when the registry lacks it."""
    if not isinstance(contract, str) or not contract:
        raise ParseError(f"{SOURCE} swap token has no contract address: {contract!r}")
    if isinstance(symbol, str) and symbol:
        code = symbol.strip()
        try:
            limits.check_code(code)
        except ValueError:
            code = code_from_id(code)
        registry.learn_contract_code(chain, contract, code)
    return onchain.token(registry, chain, contract)


def _swap(env: Envelope, registry: Registry, d: dict[str, Any]) -> list[AnyEvent]:
    where = f"{SOURCE} swap"
    if d.get("ex") is True:
        return []  # CMC excludes it from its aggregates (txtp says why): not a market price
    chain = _platform({}, d, where)
    base = _ticker(registry, chain, d.get("t0a"), d.get("t0s"))
    quote = _ticker(registry, chain, d.get("t1a"), d.get("t1s"))
    a0, a1 = opt_decimal(d.get("a0"), "a0"), opt_decimal(d.get("a1"), "a1")
    if a0 is None or a1 is None or a0.is_zero() or a1.is_zero():
        return []
    tx = str(require(d, "tx", where))
    log_index = d.get("lgid") if d.get("lgid") is not None else d.get("iix")
    identity: tuple[object, ...] = (
        (tx, log_index) if log_index is not None else (tx, d.get("pa"), a0, a1)
    )
    side = d.get("tp") if d.get("tp") in ("buy", "sell") else None
    pool_address = d.get("pa")
    return [
        PriceEvent(
            event_id=deterministic_id("trade", SOURCE, chain, *identity),
            event_time=parse_time(require(d, "ts", where), "ms", "ts"),
            received_at=env.received_at,
            source=SOURCE,
            kind="trade",
            symbol=f"{base.code}-{quote.code}",
            base=base.code,
            quote=quote.code,
            asset_id=base.asset_id,
            native_symbol=f"{chain}:{pool_address}" if pool_address else None,
            price=fit_decimal(a1 / a0),
            size=a0,
            side=side,
            network=chain,
            pool_address=contract_address(pool_address) if pool_address else None,
            tx_hash=tx,
            quote_size=a1,
        )
    ]


def _kline(
    env: Envelope, registry: Registry, params: dict[str, Any], d: dict[str, Any]
) -> list[AnyEvent]:
    where = f"{SOURCE} kline push"
    chain = _platform(params, d, where)
    tok = onchain.token(registry, chain, str(require(params, "address", where)))
    interval = str(require(params, "interval", where))
    values = [opt_decimal(d.get(k), k) for k in ("o", "h", "l", "c", "vu")]
    ot = d.get("ot")
    if ot is None or any(v is None for v in values):
        return []
    o, h, low, c, vu = (v if v is not None else Decimal(0) for v in values)
    return [
        onchain.source_candle(
            env,
            SOURCE,
            id_parts=(chain, tok.contract),
            symbol=f"{tok.code}-USD",
            interval=interval,
            open_time=parse_time(ot, "ms", "ot"),
            ohlc=(o, h, low, c),
            quote_volume=vu,
            network=chain,
            contract=tok.contract,
        )
    ]


PLUGIN = ParserPlugin(parse)
"""The entry point (an aggregator: its trades are DEX swaps, never consolidated)."""
