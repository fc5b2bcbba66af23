"""alternative.me Fear & Greed index (``/fng/``): keyless, every value a string.

``metadata.error`` non-null is reported as a rejected request (the body shape of errors is
UNCONFIRMED upstream).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from coinstream.ingest_rest.source import Endpoint, Outcome, Request, RestSource, SourceSettings

BASE_URL = "https://api.alternative.me"


class FearGreedSettings(SourceSettings):
    """``INGEST_REST_FEARGREED__*``."""

    base_url: str = BASE_URL
    limit: int = Field(1, ge=0, description="Days per poll (0 = full history)")


def validate(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return 'expected {"data": [...]}'
    return None


def _fng(s: FearGreedSettings) -> list[Request]:
    return [Request("fng", "/fng/", {"limit": str(s.limit), "format": "json"})]


class FearGreed(RestSource):
    name: ClassVar[str] = "feargreed"
    settings_model: ClassVar[type[SourceSettings]] = FearGreedSettings

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint("fng", "/fng/", 300.0, _fng, validate)]

    def provider_error(self, status: int, body: Any, headers: Mapping[str, str]) -> Outcome | None:
        if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
            error = body["metadata"].get("error")
            if error and status < 400:
                return Outcome("rejected", f"alternative.me error: {str(error)[:200]}")
        return None


SOURCE = FearGreed()
