"""The plugin contract: a REST source is a ``RestSource`` with its endpoints and settings.

A provider module defines a ``SourceSettings`` subclass (its defaults and extra options), a
list of ``Endpoint``s (what to request and how to validate the answer) and, if its error bodies
are special, ``provider_error``. It is registered once, as an entry point in the
``coinstream.sources`` group; see ``docs/adding-a-source.md``. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr

OutcomeKind = Literal["ok", "rate_limited", "auth", "transient", "invalid", "rejected"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a response means: publish it, wait, stop the source, retry, dead-letter or skip."""

    kind: OutcomeKind
    reason: str = ""
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


OK = Outcome("ok")


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP GET of an endpoint: path relative to the base URL, query, credit cost."""

    endpoint: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    cost: int = 1
    page: int = 1

    def next(self, **params: str) -> Request:
        """The same request for the next page, with ``params`` changed."""
        return replace(self, params={**self.params, **params}, page=self.page + 1)


class EndpointSettings(BaseModel):
    """Per-endpoint switches: ``INGEST_REST_<SRC>__ENDPOINTS__<ENDPOINT>__ENABLED`` etc."""

    enabled: bool = True
    interval_s: float | None = Field(None, gt=0, description="None: the endpoint's default")


class SourceSettings(BaseModel):
    """Settings every REST source has (``INGEST_REST_<SRC>__<FIELD>``).

    Plugins subclass this to change defaults and add their own options.
    """

    enabled: bool = True
    base_url: str = ""
    api_key: SecretStr | None = None
    interval_s: float | None = Field(
        None, gt=0, description="When set, overrides every endpoint interval (demos, tests)"
    )
    endpoints: dict[str, EndpointSettings] = Field(default_factory=dict)
    calls_per_minute: int = Field(30, gt=0, description="Request budget per rate window")
    rate_window_s: float = Field(60.0, gt=0, description="Window of calls_per_minute (tests: 1-2)")
    credits_per_day: int | None = Field(None, gt=0, description="Daily credit budget (CMC)")
    credit_window_s: float = Field(86_400.0, gt=0, description="Window of credits_per_day")
    timeout_s: float = Field(10.0, gt=0, description="Per-request timeout")
    max_retries: int = Field(3, ge=0, description="Retries of a timeout/5xx before giving up")
    backoff_initial_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    default_retry_after_s: float = Field(60.0, gt=0, description="429 without Retry-After")
    circuit_failure_threshold: int = Field(5, gt=0, description="Failures in a row to open")
    circuit_open_s: float = Field(60.0, gt=0, description="Open time before a probe")

    def endpoint(self, key: str) -> EndpointSettings:
        return self.endpoints.get(key) or EndpointSettings()


Validator = Callable[[Any], str | None]
"""Returns None when the decoded body has the expected envelope, else the reason."""

Paginator = Callable[[Request, Any, Any], Request | None]
"""``(request, body, settings) -> next request or None``."""


def no_paging(request: Request, body: Any, settings: Any) -> Request | None:
    return None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint of a source.

    ``channel`` is the path template published as the envelope channel (``/coins/{id}``);
    ``requests(settings)`` gives the first request(s) of one poll; ``next_page`` follows paging.
    ``publish=False`` marks a readiness probe (CoinGecko ``/ping``) that is requested but not
    published.
    """

    key: str
    channel: str
    default_interval_s: float
    requests: Callable[[Any], list[Request]]
    validate: Validator
    next_page: Paginator = no_paging
    publish: bool = True


class RestSource:
    """Base of every REST source plugin. Subclass, set the class attributes, register it."""

    name: ClassVar[str] = ""
    """Source name: the raw topic is ``coinstream.raw.<name>.v1`` (``[a-z0-9-]``)."""
    settings_model: ClassVar[type[SourceSettings]] = SourceSettings
    key_header: ClassVar[str | None] = None
    secret_params: ClassVar[frozenset[str]] = frozenset()
    """Query parameters that may hold credentials; never published or logged."""

    def endpoints(self) -> list[Endpoint]:
        raise NotImplementedError

    def base_url(self, settings: Any) -> str:
        return str(settings.base_url).rstrip("/")

    def auth_headers(self, settings: Any) -> dict[str, str]:
        key: SecretStr | None = settings.api_key
        if key is None or self.key_header is None:
            return {}
        return {self.key_header: key.get_secret_value()}

    def provider_error(self, status: int, body: Any, headers: Mapping[str, str]) -> Outcome | None:
        """Classify a provider error body (any HTTP status); None when it is not one."""
        return None

    @property
    def settings_field(self) -> str:
        """Attribute of the service settings holding this source's settings."""
        return self.name.replace("-", "_")


def expect_dict(*keys: str) -> Validator:
    """A validator: the body is a JSON object holding ``keys``."""

    def check(body: Any) -> str | None:
        if not isinstance(body, dict):
            return f"expected a JSON object, got {type(body).__name__}"
        missing = [k for k in keys if k not in body]
        return f"missing keys {missing}" if missing else None

    return check


def expect_list(body: Any) -> str | None:
    return None if isinstance(body, list) else f"expected a JSON array, got {type(body).__name__}"
