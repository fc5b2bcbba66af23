"""Normalizer errors.

Hierarchy::

    NormalizerError (CoinstreamError)
    └── ParseError                 permanent: the record goes to the dead-letter topic
        ├── UnknownInstrumentError the symbol/id cannot be mapped without guessing
        └── UnsupportedChannelError no parser for this source/channel

Kafka failures are aiokafka's own ``KafkaError`` (with its ``retriable`` flag); the engines
retry producing with backoff and never commit past what was acknowledged.
"""

from __future__ import annotations

from coinstream.runtime import CoinstreamError


class NormalizerError(CoinstreamError):
    """Base of every normalizer error."""


class ParseError(NormalizerError):
    """A raw record cannot be turned into canonical events. Never retriable: dead-letter it."""

    retriable = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownInstrumentError(ParseError):
    """A venue symbol or provider id has no mapping; it is reported, never guessed."""


class UnsupportedChannelError(ParseError):
    """No parser exists for this source and channel."""
