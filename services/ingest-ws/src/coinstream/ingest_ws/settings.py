"""The one settings class of ingest-ws (env prefix ``INGEST_WS_``, nested delimiter ``__``).

Every installed venue plugin adds one nested field named after it (``coingecko-ws`` ->
``coingecko_ws``), typed by its protocol's ``settings_class``: ``INGEST_WS_BINANCE__URL``,
``INGEST_WS_BINANCE__SYMBOLS='["BTC-USDT"]'``, ``INGEST_WS_COINBASE__ENABLED=false``,
``INGEST_WS_COINGECKO_WS__API_KEY=...``. This module names no venue: the class is built from
the entry-point group ``coinstream.ingest_ws.venues`` when ``IngestWsSettings`` is first
imported (``installed_settings_class()``), like ingest-rest's settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from pydantic import Field, create_model
from pydantic_settings import SettingsConfigDict

from coinstream.ingest_ws.venues.base import VenueProtocol, VenueSettings
from coinstream.runtime import ServiceSettings


def settings_field(venue: str) -> str:
    """The field (and env-name part) of a venue's settings: ``cmc-dex`` -> ``cmc_dex``."""
    return venue.replace("-", "_")


class IngestWsServiceSettings(ServiceSettings):
    """Service-wide settings; ``settings_class`` adds one ``VenueSettings`` field per venue."""

    model_config = SettingsConfigDict(
        env_prefix="INGEST_WS_", env_nested_delimiter="__", extra="ignore"
    )

    service_name: str = "ingest-ws"
    buffer_max_messages: int = Field(
        50_000, gt=0, description="Envelopes buffered for Kafka; beyond it new ones are dropped"
    )
    publish_batch_max: int = Field(
        20_000, gt=0, description="Envelopes taken from the buffer per producer round"
    )
    watchdog_interval_s: float = Field(0.5, gt=0, description="Stale/gap check period")
    checkpoints: bool = Field(
        True, description="Keep where each stream left off in Kafka, to detect gaps across restarts"
    )
    checkpoint_interval_s: float = Field(2.0, gt=0, description="How often checkpoints are written")
    group_id: str = Field(
        "coinstream-ingest-ws",
        min_length=1,
        description="Consumer group in which the replicas share the venue streams",
    )
    work_partitions: int = Field(
        12,
        gt=0,
        description="Partitions of the work topic when this service creates it: the most "
        "replicas that get streams. An existing topic keeps its count (it is read, not "
        "assumed)",
    )

    def venues(self) -> dict[str, VenueSettings]:
        """Settings of every registered venue by name (its defaults if the class was built
        before the venue was installed)."""
        from coinstream.ingest_ws.venues import protocols

        out: dict[str, VenueSettings] = {}
        for name, cls in protocols().items():
            value = getattr(self, settings_field(name), None)
            out[name] = value if isinstance(value, VenueSettings) else cls.settings_class()
        return out


def settings_class(
    protocols: Mapping[str, type[VenueProtocol]],
) -> type[IngestWsServiceSettings]:
    """The settings class with one field per venue protocol."""
    fields: dict[str, Any] = {
        settings_field(name): (cls.settings_class, Field(default_factory=cls.settings_class))
        for name, cls in protocols.items()
    }
    model = create_model("IngestWsSettings", __base__=IngestWsServiceSettings, **fields)
    return cast(type[IngestWsServiceSettings], model)


_built: dict[tuple[tuple[str, type[VenueProtocol]], ...], type[IngestWsServiceSettings]] = {}


def installed_settings_class() -> type[IngestWsServiceSettings]:
    """The settings class of the installed venues (built once per set of venues)."""
    from coinstream.ingest_ws.venues import protocols

    found = protocols()
    key = tuple(found.items())
    cls = _built.get(key)
    if cls is None:
        cls = _built[key] = settings_class(found)
    return cls


if TYPE_CHECKING:
    IngestWsSettings = IngestWsServiceSettings
else:

    def __getattr__(name: str) -> Any:
        """``IngestWsSettings`` is the class of the installed venues, built on first use."""
        if name == "IngestWsSettings":
            return installed_settings_class()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "IngestWsServiceSettings",
    "IngestWsSettings",
    "VenueSettings",
    "installed_settings_class",
    "settings_class",
    "settings_field",
]
