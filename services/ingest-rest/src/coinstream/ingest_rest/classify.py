"""Pure classification of an HTTP response: publish, wait, stop, retry, dead-letter or skip."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from coinstream.ingest_rest.source import OK, Outcome, RestSource, Validator
from coinstream.runtime.ratelimit import parse_retry_after

__all__ = ["NOT_JSON", "classify", "classify_status", "decode", "parse_retry_after"]

NOT_JSON = object()
"""Marker for a body that did not decode as JSON."""


def decode(text: str) -> Any:
    """The JSON value of ``text``, or ``NOT_JSON``."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return NOT_JSON


def classify_status(status: int, headers: Mapping[str, str]) -> Outcome | None:
    """Generic HTTP status rules; None for 2xx/3xx."""
    if status == 429:
        return Outcome("rate_limited", "HTTP 429", parse_retry_after(headers))
    if status in (401, 402, 403):
        return Outcome("auth", f"HTTP {status}: the provider refused the credentials")
    if status in (408, 425) or status >= 500:
        return Outcome("transient", f"HTTP {status}")
    if status >= 400:
        return Outcome("rejected", f"HTTP {status}")
    return None


def classify(
    source: RestSource,
    status: int,
    headers: Mapping[str, str],
    body: Any,
    validate: Validator,
) -> Outcome:
    """Classify one response. ``body`` is the decoded JSON or ``NOT_JSON``.

    Order: the provider's own error body (CMC checks ``status.error_code`` even on 200), then
    the HTTP status, then JSON validity and the endpoint's envelope.
    """
    if body is not NOT_JSON:
        provider = source.provider_error(status, body, headers)
        if provider is not None:
            if provider.kind == "rate_limited" and provider.retry_after_s is None:
                header_wait = parse_retry_after(headers)
                if header_wait is not None:
                    return Outcome("rate_limited", provider.reason, header_wait)
            return provider
    generic = classify_status(status, headers)
    if generic is not None:
        if body is NOT_JSON and generic.kind == "rate_limited":
            return Outcome("rate_limited", "HTTP 429 (non-JSON body)", generic.retry_after_s)
        return generic
    if body is NOT_JSON:
        return Outcome("invalid", "response body is not valid JSON")
    reason = validate(body)
    if reason is not None:
        return Outcome("invalid", f"unexpected envelope: {reason}")
    return OK
