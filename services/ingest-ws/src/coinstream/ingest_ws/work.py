"""Which streams are this replica's: the venues' jobs, shared out through work leases.

Replicas split the streams the way Kafka splits partitions (``coinstream.runtime.WorkLeases``
on ``Topics.ingest_ws_work``). A job is what a venue plugin says moves as a whole
(``VenueProtocol.job_keys``): one symbol with all its channels on the exchanges
(``binance/BTC-USDT``), the whole venue on the metered aggregators (``coingecko-ws/*``). The
core names no venue; this module only maps jobs and checkpointed streams to owners. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from coinstream.ingest_ws.venues import VenueProtocol


class StreamJobs:
    """The jobs of the enabled venues' configured streams."""

    def __init__(self, protocols: Iterable[VenueProtocol]) -> None:
        self._protocols = {p.name: p for p in protocols}
        self.by_venue = {name: p.job_keys() for name, p in self._protocols.items()}

    @property
    def total(self) -> int:
        return sum(len(keys) for keys in self.by_venue.values())

    def all(self) -> frozenset[str]:
        return frozenset(k for keys in self.by_venue.values() for k in keys)

    def owned(self, owns: Callable[[str], bool]) -> frozenset[str]:
        """The jobs ``owns(job key)`` accepts."""
        return frozenset(k for keys in self.by_venue.values() for k in keys if owns(k))

    def per_venue(self, jobs: Collection[str]) -> dict[str, int]:
        """How many of ``jobs`` each venue has."""
        return {name: sum(k in jobs for k in keys) for name, keys in self.by_venue.items()}

    def keeper(self, jobs: Collection[str]) -> Callable[[str, str], bool]:
        """``(venue, checkpointed stream key) -> bool``: whether the stream is in ``jobs``."""
        protocols = self._protocols

        def keep(venue: str, key: str) -> bool:
            protocol = protocols.get(venue)
            return protocol is not None and protocol.job_of_stream(key) in jobs

        return keep
