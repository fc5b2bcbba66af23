#!/bin/sh
# Create every Coinstream topic once, with explicit partitions and configuration (idempotent:
# --if-not-exists). Runs in the apache/kafka image as the one-shot `kafka-init` job of
# deploy/compose.yaml and as the `coinstream-topics` Job of deploy/k8s.
#
# The topic list mirrors coinstream.schemas.Topics.specs(); tests/deploy checks they agree.
# Partitions bound how far a consumer group scales (one consumer per partition at most) and
# fix the key -> partition mapping, so choose them before going live (docs/deploy.md).
set -eu

BOOTSTRAP="${BOOTSTRAP_SERVERS:-kafka:19092}"
PREFIX="${TOPIC_PREFIX:-coinstream}"
PARTITIONS="${TOPIC_PARTITIONS:-3}"
REPLICATION="${TOPIC_REPLICATION_FACTOR:-1}"
MIN_ISR="${TOPIC_MIN_INSYNC_REPLICAS:-1}"
# work topics hold no records; their partitions bound how many replicas share the jobs
WORK_PARTITIONS="${WORK_TOPIC_PARTITIONS:-12}"
TOPICS_CMD="${KAFKA_HOME:-/opt/kafka}/bin/kafka-topics.sh"
DAY_MS=86400000

create() {
    create_with "$PARTITIONS" "$@"
}

create_with() {
    partitions="$1"
    name="$PREFIX.$2"
    shift 2
    "$TOPICS_CMD" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$name" \
        --partitions "$partitions" --replication-factor "$REPLICATION" \
        --config "min.insync.replicas=$MIN_ISR" "$@"
    echo "topic $name ready"
}

# raw payloads: replays and audits only, so three days are enough
for source in coingecko coinmarketcap cmc-dex feargreed binance coinbase kraken coingecko-ws coinmarketcap-ws; do
    create "raw.$source.v1" --config "retention.ms=$((3 * DAY_MS))"
done
create prices.v1 --config "retention.ms=$((7 * DAY_MS))"
create sentiment.v1 --config "retention.ms=$((30 * DAY_MS))"
# latest record per entity id: a new subscriber reads the current state from the beginning
create metadata.v1 --config cleanup.policy=compact
create candles.v1 --config "retention.ms=$((30 * DAY_MS))"
create feed-status.v1 --config "retention.ms=$((7 * DAY_MS))"
create alerts.v1 --config "retention.ms=$((30 * DAY_MS))"
create dlq.v1 --config "retention.ms=$((14 * DAY_MS))"
# internal: where each ingest-ws stream left off (one record per stream), to find gaps after
# a restart
create ingest-ws.checkpoints.v1 --config cleanup.policy=compact
# internal: venue trades keyed by asset, from the normalize role to the consolidate role
# (a consolidation window re-read after a restart is minutes; a day is plenty)
create normalizer.trades-by-asset.v1 --config "retention.ms=$DAY_MS"
# internal, empty: ingest-rest replicas share its partitions (and so the polling jobs) through
# a consumer group; more replicas than partitions sit idle
create_with "$WORK_PARTITIONS" ingest-rest.work.v1 --config "retention.ms=$DAY_MS"
# internal, empty: the same for ingest-ws replicas (and so the venue streams)
create_with "$WORK_PARTITIONS" ingest-ws.work.v1 --config "retention.ms=$DAY_MS"

echo "topics now on the cluster:"
"$TOPICS_CMD" --bootstrap-server "$BOOTSTRAP" --list
