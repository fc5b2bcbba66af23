"""Prometheus metrics of the REST ingest service (labels never carry secrets)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "ingest_rest_requests",
    "HTTP requests sent, by HTTP status (or 'timeout'/'network')",
    ["source", "endpoint", "status"],
)
ERRORS = Counter(
    "ingest_rest_errors",
    "Failed requests by class: rate_limited, auth, transient, invalid, rejected",
    ["source", "endpoint", "error_class"],
)
LATENCY = Histogram(
    "ingest_rest_request_latency_seconds",
    "Time from sending a request to reading the whole response",
    ["source", "endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PUBLISHED = Counter(
    "ingest_rest_published", "Raw envelopes acknowledged by the broker", ["source", "endpoint"]
)
DEAD_LETTERS = Counter(
    "ingest_rest_dead_letters", "Responses sent to the dead-letter topic", ["source", "endpoint"]
)
BUDGET_REMAINING = Gauge(
    "ingest_rest_budget_remaining",
    "Calls (window=calls) or credits (window=credits) left in the provider's current window",
    ["source", "window"],
)
LAST_SUCCESS = Gauge(
    "ingest_rest_last_success_timestamp_seconds",
    "Unix time of the last successful response",
    ["source", "endpoint"],
)
RATE_LIMITED_UNTIL = Gauge(
    "ingest_rest_rate_limited_until_timestamp_seconds",
    "Unix time until which the provider asked us to wait (0 = not rate-limited)",
    ["source"],
)
CIRCUIT_OPEN = Gauge(
    "ingest_rest_circuit_open", "1 while the provider's circuit breaker is open", ["source"]
)
SOURCE_STOPPED = Gauge(
    "ingest_rest_source_stopped", "1 when the source stopped (credentials refused)", ["source"]
)
POLLS = Counter(
    "ingest_rest_polls", "Endpoint polls by result (ok/failed)", ["source", "endpoint", "result"]
)
OWNED_JOBS = Gauge(
    "ingest_rest_owned_jobs",
    "Jobs (source/endpoint) this replica polls now; replicas share them through the work group",
    ["source"],
)
WORK_PARTITIONS_OWNED = Gauge(
    "ingest_rest_work_partitions_owned", "Partitions of the work topic this replica owns now"
)
BUDGET_LIMIT = Gauge(
    "ingest_rest_budget_limit",
    "This replica's share of the provider budget: calls (window=calls) or credits per window",
    ["source", "window"],
)
