"""ingest-ws errors. ``IngestWsError`` is the base; each says whether retrying can help.

- ``IngestWsError``
  - ``UnknownSymbolError`` (not retriable): a configured symbol is not listed by the venue.
  - ``ConfigError`` (not retriable, also a runtime ``ConfigurationError``, so start-up
    reports it as one line with exit code 2): a channel or limit setting cannot work.
  - ``FeedError`` (retriable): a connection failed, went silent or stopped answering pings.
    - ``VenueRefused`` (not retriable): the venue said not to reconnect (a rejected key or
      plan) before the connection was subscribed.
  - ``RecordingError`` (not retriable): a recording file cannot be read.
"""

from __future__ import annotations

from coinstream.runtime import CoinstreamError, ConfigurationError


class IngestWsError(CoinstreamError):
    """Base of every ingest-ws error."""


class ConfigError(IngestWsError, ConfigurationError):
    """A setting cannot work; the message names it and says what to change."""


class UnknownSymbolError(ConfigError):
    """A configured canonical symbol is not known for a venue."""


class FeedError(IngestWsError):
    """A connection failed or stopped delivering; the shard reconnects with backoff."""

    retriable = True


class RecordingError(IngestWsError):
    """A recording file is missing or malformed."""


class VenueRefused(FeedError):
    """The venue refused us in a way retrying cannot fix (the message says why)."""

    retriable = False
