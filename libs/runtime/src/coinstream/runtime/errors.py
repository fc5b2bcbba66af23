"""Runtime errors. Every error says whether retrying can help."""

from __future__ import annotations


class CoinstreamError(Exception):
    """Base of every Coinstream error."""

    retriable: bool = False


class ResourceClosedError(CoinstreamError):
    """A closed client was used again; create a new one instead."""


class ConfigurationError(CoinstreamError):
    """Settings are invalid; the message names the setting and what to change."""
