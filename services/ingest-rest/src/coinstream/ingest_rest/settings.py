"""Settings of the REST ingest service (env prefix ``INGEST_REST_``, nested delimiter ``__``).

Each installed source plugin adds one nested field named after it (``cmc-dex`` ->
``cmc_dex``), typed by the plugin's ``SourceSettings`` subclass, so
``INGEST_REST_CMC_DEX__ENABLED=false`` or ``INGEST_REST_COINGECKO__INTERVAL_S=5`` work for
every plugin without changing this module. ``build_settings()`` makes the class once.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, cast

from pydantic import Field, create_model
from pydantic_settings import SettingsConfigDict

from coinstream.ingest_rest.registry import load_sources
from coinstream.ingest_rest.source import RestSource, SourceSettings
from coinstream.runtime import ServiceSettings


class IngestRestSettings(ServiceSettings):
    """Service-wide settings; the per-source fields are added by ``settings_class``."""

    model_config = SettingsConfigDict(
        env_prefix="INGEST_REST_", env_nested_delimiter="__", extra="ignore"
    )

    service_name: str = "ingest-rest"
    publish_timeout_s: float = Field(30.0, gt=0, description="Wait for the broker's ack")
    group_id: str = Field(
        "coinstream-ingest-rest",
        min_length=1,
        description="Consumer group in which the replicas share the polling jobs",
    )
    work_partitions: int = Field(
        12,
        gt=0,
        description="Partitions of the work topic when this service creates it: the most "
        "replicas that get jobs. An existing topic keeps its count (it is read, not assumed)",
    )

    def source(self, source: RestSource) -> SourceSettings:
        """The settings of ``source`` (its defaults if the plugin was installed later)."""
        value = getattr(self, source.settings_field, None)
        if isinstance(value, SourceSettings):
            return value
        return source.settings_model()


def settings_class(sources: Sequence[RestSource]) -> type[IngestRestSettings]:
    """The settings class with one field per source plugin."""
    fields: dict[str, Any] = {
        s.settings_field: (s.settings_model, Field(default_factory=s.settings_model))
        for s in sources
    }
    model = create_model("Settings", __base__=IngestRestSettings, **fields)
    return cast(type[IngestRestSettings], model)


@cache
def installed_settings_class() -> type[IngestRestSettings]:
    return settings_class(load_sources())


def build_settings(**values: Any) -> IngestRestSettings:
    """Read the environment (and ``values``) into the settings of every installed source."""
    return installed_settings_class()(**values)
