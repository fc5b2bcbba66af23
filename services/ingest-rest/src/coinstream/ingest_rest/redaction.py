"""Keeping credentials out of envelopes, logs, metrics and error messages (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import SecretStr

from coinstream.runtime import mask_secrets


def public_params(params: Mapping[str, str], secret_names: Iterable[str]) -> dict[str, str]:
    """``params`` without the parameters that may hold credentials (case-insensitive)."""
    secret = {n.lower() for n in secret_names}
    return {k: v for k, v in params.items() if k.lower() not in secret}


def redact(text: str, secrets: Iterable[SecretStr | str | None]) -> str:
    """Replace every occurrence of each secret value, then anything that looks like a key."""
    for secret in secrets:
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if value:
            text = text.replace(value, "***")
    return mask_secrets(text)
