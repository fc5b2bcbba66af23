"""CoinMarketCap DEX API v4: spot pairs latest (per network, ``scroll_id`` paging) and pair
quotes latest for configured contract addresses. Same key header and error codes as CMC.

The envelope is UNCONFIRMED upstream: ``{"data": [...]}`` (CMC style) and a bare list are both
accepted; the next page's ``scroll_id`` is read from the top level or from the last pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from coinstream.ingest_rest.source import Endpoint, Outcome, Request, RestSource, SourceSettings
from coinstream.ingest_rest.sources.coinmarketcap import BASE_URL, cmc_error


class CmcDexSettings(SourceSettings):
    """``INGEST_REST_CMC_DEX__*``."""

    base_url: str = BASE_URL
    networks: list[str] = Field(default_factory=lambda: ["ethereum", "solana"])
    spot_pairs_limit: int = Field(100, gt=0)
    spot_pairs_max_pages: int = Field(5, gt=0)
    pairs: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "ethereum": ["0xa43fe16908251ee70ef74718545e4fe6c5ccec9f"],
            "solana": ["58oQChx4yWmvKdwLLZzBi4ChoCc2fqCUWBkwMihLYQo2"],
        },
        description="network slug -> pair contract addresses for pairs/quotes/latest",
    )


def rows(body: Any) -> list[Any] | None:
    """The pair list of a DEX response: ``body["data"]`` or a bare list."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        return list(body["data"])
    return None


def validate(body: Any) -> str | None:
    if rows(body) is None:
        return 'expected {"data": [...]} or a JSON array'
    return None


def next_scroll_id(body: Any) -> str | None:
    if isinstance(body, dict) and body.get("scroll_id"):
        return str(body["scroll_id"])
    data = rows(body)
    if data and isinstance(data[-1], dict) and data[-1].get("scroll_id"):
        return str(data[-1]["scroll_id"])
    return None


def _spot_pairs(s: CmcDexSettings) -> list[Request]:
    return [
        Request(
            "spot_pairs_latest",
            "/v4/dex/spot-pairs/latest",
            {"network_slug": network, "limit": str(s.spot_pairs_limit)},
        )
        for network in s.networks
    ]


def _spot_pairs_next(request: Request, body: Any, s: CmcDexSettings) -> Request | None:
    data = rows(body) or []
    scroll = next_scroll_id(body)
    if len(data) < s.spot_pairs_limit or request.page >= s.spot_pairs_max_pages or not scroll:
        return None
    return request.next(scroll_id=scroll)


def _pair_quotes(s: CmcDexSettings) -> list[Request]:
    return [
        Request(
            "pairs_quotes_latest",
            "/v4/dex/pairs/quotes/latest",
            {"network_slug": network, "contract_address": ",".join(contracts)},
        )
        for network, contracts in s.pairs.items()
        if contracts
    ]


class CmcDex(RestSource):
    name: ClassVar[str] = "cmc-dex"
    settings_model: ClassVar[type[SourceSettings]] = CmcDexSettings
    key_header: ClassVar[str | None] = "X-CMC_PRO_API_KEY"
    secret_params: ClassVar[frozenset[str]] = frozenset({"CMC_PRO_API_KEY"})

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(
                "spot_pairs_latest",
                "/v4/dex/spot-pairs/latest",
                120.0,
                _spot_pairs,
                validate,
                _spot_pairs_next,
            ),
            Endpoint(
                "pairs_quotes_latest", "/v4/dex/pairs/quotes/latest", 120.0, _pair_quotes, validate
            ),
        ]

    def provider_error(self, status: int, body: Any, headers: Mapping[str, str]) -> Outcome | None:
        return cmc_error(status, body, self.name)


SOURCE = CmcDex()
