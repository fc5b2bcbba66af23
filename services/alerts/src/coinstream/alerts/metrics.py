"""Prometheus metrics of the alerts service (all recorded by ``app``/``dispatcher``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("alerts_events_total", "Events evaluated, by topic kind", ["kind"])
DECODE_ERRORS = Counter("alerts_decode_errors_total", "Records that were not valid events")
EVALUATION_ERRORS = Counter(
    "alerts_evaluation_errors_total", "Events a rule failed to evaluate (dead-lettered)"
)
TRANSITIONS = Counter("alerts_transitions_total", "Alert state changes", ["status"])
FIRING = Gauge("alerts_firing", "Alerts currently firing")
PENDING = Gauge("alerts_pending", "Alerts currently pending")
NOTIFICATIONS_QUEUED = Counter(
    "alerts_notifications_queued_total", "Notifications written to the outbox", ["receiver"]
)
NOTIFICATIONS_SENT = Counter(
    "alerts_notifications_sent_total", "Notifications delivered", ["receiver"]
)
DELIVERY_FAILURES = Counter(
    "alerts_delivery_failures_total",
    "Failed delivery attempts (retried unless permanent)",
    ["receiver", "kind"],
)
OUTBOX = Gauge("alerts_outbox_pending", "Notifications waiting to be delivered")
DELIVERY_SECONDS = Histogram(
    "alerts_delivery_seconds",
    "From the notification being queued to its delivery",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
SILENCED = Counter("alerts_silenced_total", "Firing alerts that matched a silence")
RELOADS = Counter("alerts_rule_reloads_total", "Rules reloads", ["result"])
RULES = Gauge("alerts_rules", "Active rules")
STATE_SAVES = Counter("alerts_state_saves_total", "Snapshots written to the store")
