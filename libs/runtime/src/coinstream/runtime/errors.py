"""Runtime errors. Every error says whether retrying can help."""

from __future__ import annotations


class CoinstreamError(Exception):
    """Base of every Coinstream error."""

    retriable: bool = False


class ResourceClosedError(CoinstreamError):
    """A closed client was used again; create a new one instead."""


class ConfigurationError(CoinstreamError):
    """Settings are invalid; the message names the setting and what to change."""


class TopicCreationError(CoinstreamError):
    """The broker refused to create one or more topics (a per-topic error code in its answer).

    ``refused`` maps each topic to the broker's error; ``retriable`` is true only when every
    refusal is one the broker marks retriable (for example, no controller yet).
    """

    def __init__(self, refused: dict[str, tuple[str, bool]]) -> None:
        self.refused = {topic: reason for topic, (reason, _) in refused.items()}
        self.retriable = all(retriable for _, retriable in refused.values())
        detail = "; ".join(f"{topic}: {reason}" for topic, reason in self.refused.items())
        super().__init__(
            f"the broker refused to create {len(refused)} topic(s): {detail}. Check the topic "
            "settings (KAFKA_TOPIC_PARTITIONS, KAFKA_REPLICATION_FACTOR against the number of "
            "brokers, the topic configs) or create the topics yourself and set "
            "KAFKA_CREATE_TOPICS=false"
        )
