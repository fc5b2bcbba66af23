"""What the on-chain channels of the aggregator streams share (not a plugin).

Tokens are identified by chain + contract through the registry (``by_contract``, with the
per-chain case rules of ``identity.contract_address``), never by ticker; a pool's tokens come
from the registry's pools (CoinGecko's on-chain pushes name only the pool). OHLCV candles of
aggregators carry OHLC and a quote (USD) volume only: ``source_candle`` fills the fields the
contract requires and names them in ``CandleEvent.estimated``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from coinstream.normalizer.errors import ParseError, UnknownInstrumentError
from coinstream.normalizer.identity import Pool, Registry, contract_address
from coinstream.normalizer.values import fit_decimal
from coinstream.schemas import CandleEvent, deterministic_id
from coinstream.schemas.fastenvelope import Envelope

ESTIMATED = ("volume", "vwap", "trade_count")
_INTERVAL = re.compile(r"^(\d+)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_THREE = Decimal(3)


@dataclass(frozen=True, slots=True)
class Token:
    """A token resolved through the registry: its chain, contract, asset id and code."""

    chain: str
    contract: str
    asset_id: str
    code: str


def token(registry: Registry, chain: str, contract: str) -> Token:
    address = contract_address(contract)
    return Token(
        chain,
        address,
        registry.by_contract(chain, address),
        registry.contract_code(chain, address),
    )


def pool(registry: Registry, source: str, chain: str, address: str) -> Pool:
    """The registry's pool, or an ``UnknownInstrumentError`` saying how to add it."""
    found = registry.pool(chain, address)
    if found is None:
        raise UnknownInstrumentError(
            f"{source} pool {chain}:{contract_address(address)} is not in the registry, so its "
            'tokens are unknown; add it to NORMALIZER_REGISTRY_FILE as {"pools": [{"network": '
            f'"{chain}", "address": ..., "base": <token contract>, "quote": <token '
            "contract>}]} and replay the dead letters"
        )
    return found


def interval_seconds(interval: str, where: str) -> int:
    m = _INTERVAL.match(interval)
    if m is None:
        raise ParseError(f"{where} interval {interval!r} is not like 1m, 5m, 1h, 1d")
    return int(m.group(1)) * _UNIT_S[m.group(2)]


def source_candle(
    env: Envelope,
    source: str,
    *,
    id_parts: tuple[object, ...],
    symbol: str,
    interval: str,
    open_time: datetime,
    ohlc: tuple[Decimal, Decimal, Decimal, Decimal],
    quote_volume: Decimal,
    network: str,
    pool_address: str | None = None,
    contract: str | None = None,
) -> CandleEvent:
    """An aggregator's candle. The source sends OHLC and a USD volume; ``vwap`` is the typical
    price (high + low + close) / 3, ``volume`` is quote_volume / vwap and ``trade_count`` 0,
    all named in ``estimated``. The open candle is pushed again and again: its revision is the
    milliseconds from its open to its receipt (later pushes win), and it is ``final`` once
    received after its close."""
    o, h, low, c = ohlc
    length = timedelta(seconds=interval_seconds(interval, source))
    close_time = open_time + length
    vwap = fit_decimal((h + low + c) / _THREE)
    volume = fit_decimal(quote_volume / vwap) if vwap > 0 else Decimal(0)
    age_ms = (env.received_at - open_time) // timedelta(milliseconds=1)
    return CandleEvent(
        event_id=deterministic_id("candle", source, *id_parts, interval, open_time.isoformat()),
        event_time=open_time,
        received_at=env.received_at,
        source=source,
        revision=max(0, age_ms),
        venue=source,
        symbol=symbol,
        interval=interval,
        open_time=open_time,
        close_time=close_time,
        open=o,
        high=h,
        low=low,
        close=c,
        volume=volume,
        quote_volume=quote_volume,
        vwap=vwap,
        trade_count=0,
        final=env.received_at >= close_time,
        network=network,
        pool_address=pool_address,
        contract_address=contract,
        estimated=ESTIMATED,
    )
