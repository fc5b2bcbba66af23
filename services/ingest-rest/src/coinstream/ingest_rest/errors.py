"""Errors of the REST ingest service. Every error says whether retrying can help.

``IngestRestError`` (base)
- ``TransientSourceError`` (retriable): a timeout or connection error; retried with backoff.
- ``InvalidResponseError``: not JSON or not the documented envelope; the response goes to the
  dead-letter topic (its class name is the ``dlq.error_class`` header).
- ``SourceStoppedError``: the provider refused the credentials; the source's endpoint tasks end.
- ``WorkMovedError``: the job was handed to another replica during a poll; the poll ends and
  the new owner polls it.

HTTP responses are classified into ``source.Outcome`` values (``rate_limited``, ``auth``,
``transient``, ``invalid``, ``rejected``) rather than raised; see ``classify.py``.
"""

from __future__ import annotations

from coinstream.runtime import CoinstreamError


class IngestRestError(CoinstreamError):
    """Base of every ingest-rest error."""


class TransientSourceError(IngestRestError):
    """The request timed out or the connection failed; retrying can help."""

    retriable = True


class InvalidResponseError(IngestRestError):
    """The body is not JSON or not the documented envelope; retrying the same call won't help."""


class SourceStoppedError(IngestRestError):
    """The source stopped because its credentials were refused; set a valid API key."""


class WorkMovedError(IngestRestError):
    """The job moved to another replica (a rebalance); this replica stops polling it."""
