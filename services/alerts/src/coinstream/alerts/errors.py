"""Errors of the alerts service. Each says whether retrying can help.

``AlertsError`` (base)
- ``RulesError``: the rules file is invalid (names the rule and field); not retriable; a
  runtime ``ConfigurationError`` too, so start-up reports it with exit code 2.
- ``EvaluationError``: a rule's evaluator failed on one event (the event is dead-lettered;
  the other rules' transitions for it still apply); not retriable.
- ``DeliveryError``: a notification could not be delivered.
  - ``retriable=True`` for network errors, 5xx and 429 (``retry_after`` set when the
    destination said how long to wait); ``retriable=False`` for a rejected request (4xx).
"""

from __future__ import annotations

from typing import Any

from coinstream.runtime import CoinstreamError, ConfigurationError


class AlertsError(CoinstreamError):
    """Base of every alerts-service error."""


class RulesError(AlertsError, ConfigurationError):
    """The rules file is invalid; the message names the rule and field to fix."""


class EvaluationError(AlertsError):
    """Evaluating one event failed in some rules; ``transitions`` holds the other rules'."""

    retriable = False

    def __init__(self, failures: list[str], transitions: list[Any]) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures
        self.transitions = transitions


class DeliveryError(AlertsError):
    """A notification was not delivered."""

    def __init__(self, message: str, *, retriable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.retry_after = retry_after
