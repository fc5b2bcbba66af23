"""CoinMarketCap DEX v4: /v4/dex/spot-pairs/latest and /v4/dex/pairs/quotes/latest.

Live shapes vary, so every documented variant is accepted: a bare list or ``{"data": [...]}``;
ids as numbers or strings; ``quote`` as an array with ``convert_id`` or a map keyed by convert
id; nested ``base_asset``/``quote_asset`` objects or flat ``base_asset_*`` fields. Tokens are
identified by network + contract address (``identity.contract_address``: hex addresses
lowercase, every other chain's case kept), never by symbol.

``percent_change_price_1h``/``_24h`` are fractions (``0.0123`` is +1.23 %), unlike CMC's
``/v1`` and ``/v2`` ``percent_change_*`` which are percents: recorded DEX responses carry values
such as ``-0.0102`` next to a price that moved about 1 %, and third-party clients multiply them
by 100. ``change_24h_pct`` is a percent, so the value is multiplied by 100 here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from coinstream.normalizer.errors import ParseError
from coinstream.normalizer.identity import Registry, contract_address
from coinstream.normalizer.parsers.common import (
    AnyEvent,
    ParserPlugin,
    channel_error,
    content_id,
    json_safe,
    price,
)
from coinstream.normalizer.values import as_dict, as_list, loads, opt_decimal, opt_time, require
from coinstream.schemas import AssetMetadataEvent, deterministic_id
from coinstream.schemas.fastenvelope import Envelope

SOURCE = "cmc-dex"
USD_CONVERT_IDS = frozenset({"2781", "USD", "usd"})
CHANNELS = ("/v4/dex/spot-pairs/latest", "/v4/dex/pairs/quotes/latest")


def parse(env: Envelope, registry: Registry, hint: str | None = None) -> list[AnyEvent]:
    if env.channel not in CHANNELS:
        raise channel_error(env)
    body = loads(env.payload)
    if isinstance(body, dict):
        status = body.get("status")
        if isinstance(status, dict) and status.get("error_code") not in (0, "0", None):
            raise ParseError(
                f"cmc-dex error {status.get('error_code')}: {status.get('error_message')}"
            )
        body = require(body, "data", "cmc-dex body")
    out: list[AnyEvent] = []
    for pair in as_list(body, "cmc-dex data"):
        out.extend(_pair(env, registry, as_dict(pair, "cmc-dex pair")))
    return out


def _asset(pair: dict[str, Any], side: str) -> dict[str, Any]:
    nested = pair.get(f"{side}_asset")
    if isinstance(nested, dict):
        return nested
    prefix = f"{side}_asset_"
    return {k[len(prefix) :]: v for k, v in pair.items() if k.startswith(prefix)}


def _percent(fraction: Any) -> Decimal | None:
    value = opt_decimal(fraction, "percent_change_price_24h")
    return None if value is None else value * 100


def _quotes(pair: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    quote = pair.get("quote") or []
    if isinstance(quote, dict):
        return [(str(k), as_dict(v, "quote")) for k, v in quote.items()]
    return [(str(as_dict(q, "quote").get("convert_id", "")), q) for q in as_list(quote, "quote")]


def _pair(env: Envelope, registry: Registry, pair: dict[str, Any]) -> list[AnyEvent]:
    contract = contract_address(str(require(pair, "contract_address", "cmc-dex pair")))
    network = str(pair.get("network_slug") or pair.get("network_id") or "").lower()
    if not network:
        raise ParseError("cmc-dex pair has no network_slug or network_id")
    base, quote = _asset(pair, "base"), _asset(pair, "quote")
    base_code = str(base.get("symbol") or "").upper()
    quote_code = str(quote.get("symbol") or "").upper()
    if not base_code or not base.get("contract_address"):
        raise ParseError(f"cmc-dex pair {contract} has no base asset symbol/contract")
    base_id = registry.by_contract(network, str(base["contract_address"]))
    quote_id = (
        registry.by_contract(network, str(quote["contract_address"]))
        if quote.get("contract_address")
        else None
    )
    # symbols use the registry's code of a resolved asset, so two coins never share a symbol
    base_code = registry.code_for(base_id, base_code)
    quote_code = registry.code_for(quote_id, quote_code) if quote_code else quote_code
    out: list[AnyEvent] = []
    updated = pair.get("last_updated")
    for convert, q in _quotes(pair):
        q_updated = q.get("last_updated") or updated
        event_time = opt_time(q_updated, name="last_updated") or env.received_at
        stamp = q_updated or event_time.isoformat()
        if convert in USD_CONVERT_IDS and q.get("price") is not None:
            out.append(
                price(
                    kind="aggregate", source=SOURCE,
                    event_id=deterministic_id("aggregate", SOURCE, network, contract, "USD", stamp),
                    event_time=event_time, received_at=env.received_at,
                    symbol=f"{base_code}-USD", base=base_code, quote="USD", asset_id=base_id,
                    native_symbol=f"{network}:{contract}",
                    price=opt_decimal(q.get("price"), "price"),
                    quote_volume_24h=opt_decimal(q.get("volume_24h"), "volume_24h"),
                    change_24h_pct=_percent(q.get("percent_change_price_24h")),
                )
            )  # fmt: skip
        by_quote = q.get("price_by_quote_asset")
        if by_quote is not None and quote_code:
            out.append(
                price(
                    kind="aggregate", source=SOURCE,
                    event_id=deterministic_id("aggregate", SOURCE, network, contract, quote_code, stamp),
                    event_time=event_time, received_at=env.received_at,
                    symbol=f"{base_code}-{quote_code}", base=base_code, quote=quote_code,
                    asset_id=base_id, native_symbol=f"{network}:{contract}",
                    price=opt_decimal(by_quote, "price_by_quote_asset"),
                )
            )  # fmt: skip
    entity_id = f"dex_pair:{network}:{contract}"
    attributes = {
        k: json_safe(pair.get(k))
        for k in (
            "pool_created",
            "created_at",
            "holders",
            "num_transactions_24h",
            "buy_tax",
            "sell_tax",
            "network_id",
            "dex_id",
        )
        if pair.get(k) is not None
    }
    fields: dict[str, Any] = {
        "name": pair.get("name"),
        "symbol": f"{base_code}-{quote_code}" if quote_code else base_code,
        "network": network,
        "dex": str(pair.get("dex_slug") or pair.get("dex_id") or "") or None,
        "contract_address": contract,
        "base_asset_id": base_id,
        "quote_asset_id": quote_id,
        "source_ids": {"cmc-dex": contract},
        "attributes": attributes,
    }
    content = {k: json_safe(v) for k, v in fields.items() if v is not None}
    out.append(
        AssetMetadataEvent(
            event_id=content_id("metadata", SOURCE, entity_id, content=content),
            event_time=opt_time(updated, name="last_updated") or env.received_at,
            received_at=env.received_at,
            source=SOURCE,
            entity="dex_pair",
            entity_id=entity_id,
            **{k: v for k, v in fields.items() if v is not None},
        )
    )
    return out


PLUGIN = ParserPlugin(parse)
"""The entry point (an aggregator: its prices feed no candles or consolidation)."""
