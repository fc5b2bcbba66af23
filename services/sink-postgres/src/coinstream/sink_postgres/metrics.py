"""Prometheus metrics of sink-postgres (all recorded by ``sink.py`` and ``store.py``).

Rows per second per table is ``rate(sink_postgres_rows_written_total[1m])``; the gauge
``sink_postgres_rows_per_second`` holds the rate of the last batch for quick inspection.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS_CONSUMED = Counter(
    "sink_postgres_records_consumed_total", "Kafka records consumed", ["topic"]
)
ROWS_WRITTEN = Counter(
    "sink_postgres_rows_written_total",
    "Rows inserted or updated, per table (rate() gives rows/s)",
    ["table"],
)
ROWS_ABSORBED = Counter(
    "sink_postgres_rows_absorbed_total",
    "Rows that changed nothing: in-batch duplicates, replays, older revisions",
    ["table"],
)
ROWS_PER_SECOND = Gauge(
    "sink_postgres_rows_per_second",
    "Rows staged per second of database time, last batch",
    ["table"],
)
BATCH_ROWS = Histogram(
    "sink_postgres_batch_records",
    "Records per batch",
    buckets=(1, 10, 50, 100, 500, 1_000, 2_500, 5_000, 10_000, 25_000),
)
BATCH_SECONDS = Histogram(
    "sink_postgres_batch_seconds",
    "Database time per batch (one transaction), including retries' final attempt",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_END_TO_END_SECONDS = Histogram(
    "sink_postgres_batch_commit_seconds",
    "From the first record of a batch consumed to its offsets committed",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DB_RETRIES = Counter(
    "sink_postgres_db_retries_total", "Batch writes retried after a database failure", ["error"]
)
DB_UP = Gauge("sink_postgres_db_up", "1 when the last database operation succeeded")
PAUSED = Gauge("sink_postgres_consumption_paused", "1 while consumption is paused")
DEAD_LETTERS = Counter(
    "sink_postgres_dead_letters_total", "Records sent to the dead-letter topic", ["reason"]
)
COMMITS = Counter("sink_postgres_offset_commits_total", "Offset commits", ["outcome"])
CONSUMER_LAG = Gauge(
    "sink_postgres_consumer_lag_records",
    "Records consumed but not yet committed (computed from consumed offsets, not broker "
    "end offsets)",
    ["topic", "partition"],
)
EVENT_LAG = Gauge(
    "sink_postgres_event_lag_seconds",
    "Now minus received_at of the newest event committed, per event type",
    ["type"],
)
REBALANCES = Counter(
    "sink_postgres_rebalance_events_total",
    "Partition assignments and revocations seen by this consumer",
    ["event"],
)
