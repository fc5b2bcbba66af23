"""Prometheus metrics. The core counts in plain dicts; engines ``record()`` them per batch."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter("normalizer_records_total", "Raw records consumed", ["source"])
EVENTS = Counter("normalizer_events_total", "Canonical events produced", ["type"])
DEAD_LETTERS = Counter("normalizer_dead_letters_total", "Records dead-lettered", ["reason"])
DUPLICATES = Counter("normalizer_duplicates_total", "Events dropped as duplicates")
IGNORED = Counter("normalizer_ignored_frames_total", "Heartbeat/status/ack frames ignored")
LATE_TRADES = Counter("normalizer_late_trades_total", "Trades later than the candle grace")
AMENDED = Counter("normalizer_candle_amendments_total", "Candle revisions from late trades")
REVISED = Counter(
    "normalizer_candle_revisions_after_final_total",
    "Final candles revised by trades later than the grace (backfilled after a gap)",
)
BACKFILLED = Counter(
    "normalizer_backfilled_records_total", "Raw records fetched from REST history to fill a gap"
)
UNMAPPED = Gauge("normalizer_unmapped_ids", "Source ids/symbols the registry does not know")
OPEN_CANDLES = Gauge("normalizer_open_candles", "Candles not yet final")
BATCH_SECONDS = Histogram(
    "normalizer_batch_seconds",
    "Consume-to-commit time of one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
COMMITS = Counter("normalizer_commits_total", "Offset commits")
ERRORS = Counter("normalizer_engine_errors_total", "Produce/commit failures retried")


def record(stats: dict[str, dict[str, int]]) -> None:
    """Move the core's per-batch counts into the Prometheus metrics and clear them."""
    for source, n in stats["records"].items():
        RECORDS.labels(source).inc(n)
    for kind, n in stats["events"].items():
        EVENTS.labels(kind).inc(n)
    for reason, n in stats["dead_letters"].items():
        DEAD_LETTERS.labels(reason).inc(n)
    misc = stats["misc"]
    DUPLICATES.inc(misc.get("duplicates", 0))
    IGNORED.inc(misc.get("ignored", 0))
    LATE_TRADES.inc(misc.get("late_trades", 0))
    AMENDED.inc(misc.get("amended", 0))
    REVISED.inc(misc.get("revised", 0))
    BACKFILLED.inc(misc.get("backfilled", 0))
    for bucket in stats.values():
        bucket.clear()
