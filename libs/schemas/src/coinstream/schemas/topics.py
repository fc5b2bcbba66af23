"""Topic registry: the public topic names, their keys and their recommended configuration."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

RAW_SOURCES: tuple[str, ...] = (
    "coingecko",
    "coinmarketcap",
    "cmc-dex",
    "feargreed",
    "binance",
    "coinbase",
    "kraken",
    "coingecko-ws",
    "coinmarketcap-ws",
)
"""Sources shipped with Coinstream. Plugins may add more; names match ``[a-z0-9][a-z0-9-]*``."""

REST_SOURCES: tuple[str, ...] = ("coingecko", "coinmarketcap", "cmc-dex", "feargreed")
WS_SOURCES: tuple[str, ...] = ("binance", "coinbase", "kraken", "coingecko-ws", "coinmarketcap-ws")

_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How a topic should be created: partitions and topic-level configs."""

    name: str
    partitions: int
    key: str
    configs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Topics:
    """All Coinstream topic names for one prefix (``coinstream`` unless configured)."""

    prefix: str = "coinstream"

    def __post_init__(self) -> None:
        if not _PREFIX.match(self.prefix):
            raise ValueError(f"invalid topic prefix {self.prefix!r}: use letters, digits, . _ -")

    def raw(self, source: str) -> str:
        """``<prefix>.raw.<source>.v1``: verbatim payloads from one source, in raw envelopes."""
        if not _SOURCE_NAME.match(source):
            raise ValueError(f"invalid source name {source!r}: use lowercase letters, digits, -")
        return f"{self.prefix}.raw.{source}.v1"

    def source_of_raw(self, topic: str) -> str | None:
        """The source of a raw topic name (``coinstream.raw.binance.v1`` -> ``binance``), or
        None when ``topic`` is not a raw topic of this prefix."""
        head = f"{self.prefix}.raw."
        if not (topic.startswith(head) and topic.endswith(".v1")):
            return None
        source = topic[len(head) : -len(".v1")]
        return source if _SOURCE_NAME.match(source) else None

    @property
    def prices(self) -> str:
        return f"{self.prefix}.prices.v1"

    @property
    def sentiment(self) -> str:
        return f"{self.prefix}.sentiment.v1"

    @property
    def metadata(self) -> str:
        return f"{self.prefix}.metadata.v1"

    @property
    def candles(self) -> str:
        return f"{self.prefix}.candles.v1"

    @property
    def feed_status(self) -> str:
        return f"{self.prefix}.feed-status.v1"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts.v1"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq.v1"

    @property
    def ingest_checkpoints(self) -> str:
        """Internal, compacted: where each ingest-ws stream left off (last trade id per venue
        and symbol), read at start-up so a restart detects the trades it missed."""
        return f"{self.prefix}.ingest-ws.checkpoints.v1"

    @property
    def trades_by_asset(self) -> str:
        """Internal repartition topic: venue spot trades (canonical ``PriceEvent`` JSON) keyed
        by asset, so the consolidation stage scales by partitions with every venue of an
        asset in one partition."""
        return f"{self.prefix}.normalizer.trades-by-asset.v1"

    def work(self, service: str) -> str:
        """Internal, empty: ``<prefix>.<service>.work.v1``, the coordination topic whose
        partitions a service's replicas share out through a consumer group (work leases).
        Nothing is written to it; its partition count bounds how many replicas get work."""
        if not _SOURCE_NAME.match(service):
            raise ValueError(f"invalid service name {service!r}: use lowercase letters, digits, -")
        return f"{self.prefix}.{service}.work.v1"

    @property
    def ingest_rest_work(self) -> str:
        """The work topic of ingest-rest: its replicas split the polling jobs by partition."""
        return self.work("ingest-rest")

    @property
    def ingest_ws_work(self) -> str:
        """The work topic of ingest-ws: its replicas split the venue streams by partition."""
        return self.work("ingest-ws")

    def internal_specs(self, partitions: int = 3, work_partitions: int = 12) -> list[TopicSpec]:
        """Topics the services keep for themselves (not part of the subscriber contract).

        Work topics have their own, fixed partition count (``work_partitions``): it is the
        most replicas that can share a service's jobs, not a throughput figure.
        """
        return [
            TopicSpec(
                self.ingest_checkpoints,
                partitions,
                "venue:stream key, e.g. binance:trade:BTC-USDT",
                {"cleanup.policy": "compact"},
            ),
            TopicSpec(
                self.trades_by_asset,
                partitions,
                "asset id (or base code), e.g. bitcoin",
                {"retention.ms": str(24 * 3600 * 1000)},
            ),
            TopicSpec(
                self.ingest_rest_work,
                work_partitions,
                "none: membership only, no records",
                {"retention.ms": "86400000"},
            ),
            TopicSpec(
                self.ingest_ws_work,
                work_partitions,
                "none: membership only, no records",
                {"retention.ms": "86400000"},
            ),
        ]

    def all_raw(self, sources: tuple[str, ...] = RAW_SOURCES) -> list[str]:
        return [self.raw(s) for s in sources]

    def canonical(self) -> list[str]:
        return [
            self.prices,
            self.sentiment,
            self.metadata,
            self.candles,
            self.feed_status,
            self.alerts,
        ]

    def specs(self, sources: tuple[str, ...] = RAW_SOURCES, partitions: int = 3) -> list[TopicSpec]:
        """Every topic with its recommended partitions, key and configuration."""
        specs = [TopicSpec(self.raw(s), partitions, "venue:symbol or endpoint") for s in sources]
        specs += [
            TopicSpec(self.prices, partitions, "canonical symbol, e.g. BTC-USDT"),
            TopicSpec(self.sentiment, partitions, "subject:metric"),
            TopicSpec(
                self.metadata,
                partitions,
                "entity id, e.g. asset:bitcoin",
                {"cleanup.policy": "compact"},
            ),
            TopicSpec(self.candles, partitions, "venue:symbol"),
            TopicSpec(self.feed_status, partitions, "source[:symbol]"),
            TopicSpec(self.alerts, partitions, "alert fingerprint"),
            TopicSpec(self.dlq, partitions, "origin key (unchanged)"),
        ]
        return specs
