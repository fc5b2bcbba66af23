"""The HTTP adapter (httpx): one connection pool per source, errors without URLs or keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from coinstream.ingest_rest.errors import TransientSourceError

USER_AGENT = "coinstream-ingest-rest/0.1"


@dataclass(frozen=True, slots=True)
class Fetched:
    status: int
    headers: dict[str, str]
    text: str


class HttpFetcher:
    """``async with HttpFetcher(timeout_s) as http: await http.get(url, params, headers)``."""

    def __init__(self, timeout_s: float, max_connections: int = 10) -> None:
        self._timeout = timeout_s
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_connections),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            follow_redirects=False,
        )

    async def get(self, url: str, params: Mapping[str, str], headers: Mapping[str, str]) -> Fetched:
        """GET and read the whole body; timeouts and connection errors are retriable."""
        try:
            resp = await self._client.get(url, params=dict(params), headers=dict(headers))
        except httpx.TimeoutException as exc:
            raise TransientSourceError(
                f"timeout after {self._timeout:g} s ({type(exc).__name__})"
            ) from None
        except httpx.HTTPError as exc:
            raise TransientSourceError(f"network error ({type(exc).__name__})") from None
        return Fetched(resp.status_code, dict(resp.headers), resp.text)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
