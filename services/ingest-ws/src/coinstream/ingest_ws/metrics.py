"""Prometheus metrics of ingest-ws (all recorded by the connection loop and the publisher)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONNECTION_STATE = Gauge(
    "ingest_ws_connection_state",
    "Shard connection state: 0 down, 1 connecting, 2 subscribed, 3 receiving data",
    ["venue", "shard"],
)
CONNECT_ATTEMPTS = Counter(
    "ingest_ws_connect_attempts_total", "Connection attempts", ["venue", "outcome"]
)
RECONNECTS = Counter(
    "ingest_ws_reconnects_total", "Connections lost and re-opened", ["venue", "reason"]
)
HANDOVERS = Counter(
    "ingest_ws_handovers_total", "Make-before-break connection rotations", ["venue", "reason"]
)
MESSAGES = Counter("ingest_ws_messages_total", "Frames received", ["venue", "kind"])
MESSAGE_RATE = Gauge("ingest_ws_messages_per_second", "Frames/s over the last interval", ["venue"])
GAPS = Counter("ingest_ws_gaps_total", "Sequence gaps detected", ["venue", "channel"])
MISSING = Counter(
    "ingest_ws_missing_messages_total", "Messages missing in detected gaps", ["venue", "channel"]
)
DUPLICATES = Counter("ingest_ws_duplicates_total", "Duplicate frames (dropped)", ["venue"])
OUT_OF_ORDER = Counter("ingest_ws_out_of_order_total", "Late frames that filled a gap", ["venue"])
STALE_EVENTS = Counter("ingest_ws_stale_total", "Streams that went stale", ["venue", "channel"])
STALE_STREAMS = Gauge("ingest_ws_stale_streams", "Streams currently stale", ["venue"])
FEED_STATUS = Counter("ingest_ws_feed_status_total", "Feed-status events emitted", ["status"])
LAG = Histogram(
    "ingest_ws_exchange_lag_seconds",
    "Receipt time minus exchange event time",
    ["venue"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BUFFERED = Gauge("ingest_ws_buffered_messages", "Envelopes waiting for the Kafka producer")
PUBLISHED = Counter(
    "ingest_ws_published_total", "Records (envelopes and feed-status events) acked by Kafka"
)
DROPPED = Counter("ingest_ws_dropped_total", "Envelopes dropped", ["venue", "reason"])
PUBLISH_ERRORS = Counter("ingest_ws_publish_errors_total", "Records Kafka did not accept")
BACKFILL_REQUESTS = Counter(
    "ingest_ws_backfill_requests_total", "REST history requests", ["venue", "result"]
)
BACKFILLED_TRADES = Counter(
    "ingest_ws_backfilled_trades_total", "Missing trades recovered from REST history", ["venue"]
)
GAPS_FILLED = Counter("ingest_ws_gaps_filled_total", "Gaps fully backfilled", ["venue"])
GAPS_UNRECOVERABLE = Counter(
    "ingest_ws_gaps_unrecoverable_total", "Gaps (partly) not recoverable", ["venue"]
)
UNRECOVERABLE_TRADES = Counter(
    "ingest_ws_unrecoverable_trades_total", "Missing trades no history could supply", ["venue"]
)
CREDITS_USED = Counter(
    "ingest_ws_credits_used_total", "Plan credits used by billable messages", ["venue"]
)
CREDITS_REMAINING = Gauge(
    "ingest_ws_credit_budget_remaining", "Credits left in today's budget (UTC)", ["venue"]
)
SUBSCRIPTIONS = Gauge(
    "ingest_ws_subscriptions", "Subscriptions the venue acknowledged, per shard", ["venue", "shard"]
)
OWNED_JOBS = Gauge(
    "ingest_ws_owned_jobs", "Stream jobs (symbols; whole aggregator venues) held here", ["venue"]
)
WORK_PARTITIONS_OWNED = Gauge(
    "ingest_ws_work_partitions_owned", "Partitions of the work topic this replica owns now"
)
