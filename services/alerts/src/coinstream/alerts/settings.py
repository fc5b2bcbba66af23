"""Settings of the alerts service (env prefix ``ALERTS_``)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import CliSuppress, SettingsConfigDict

from coinstream.runtime import ServiceSettings


def _env_secrets() -> dict[str, SecretStr]:
    """Receiver secrets the rules file may reference: every ``ALERTS_*`` variable."""
    return {k: SecretStr(v) for k, v in os.environ.items() if k.startswith("ALERTS_")}


class SmtpSettings(BaseModel):
    """The SMTP relay used by ``email`` receivers (``ALERTS_SMTP__HOST`` ...).

    ``use_tls``: TLS from the first byte (implicit TLS, usually port 465); ``starttls``:
    upgrade a plain connection with STARTTLS (usually port 587). Either way the server's
    certificate is verified against the system's CAs, or ``ca_file``'s."""

    host: str = "localhost"
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    use_tls: bool = False
    ca_file: Path | None = Field(None, description="PEM CA bundle to verify the server with")
    verify: bool = Field(True, description="Verify the server certificate (keep it on)")
    username: str | None = None
    password: SecretStr | None = None
    from_addr: str = "coinstream-alerts@localhost"
    timeout_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _one_tls_mode(self) -> SmtpSettings:
        if self.use_tls and self.starttls:
            raise ValueError(
                "set use_tls (implicit TLS, port 465) or starttls (port 587), not both"
            )
        return self


class AlertsSettings(ServiceSettings):
    """Everything the alerts service reads from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="ALERTS_", env_nested_delimiter="__", extra="ignore", populate_by_name=True
    )

    service_name: str = "alerts"
    rules_file: Path = Field(Path("alert-rules.yaml"), description="YAML rules file")
    database_url: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("ALERTS_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="PostgreSQL for alert state and the outbox; none = state kept in memory",
    )
    group_id: str = "coinstream-alerts"
    fetch_max_wait_ms: int = Field(
        50, ge=0, description="Longest a fetch waits for new records (latency vs. requests)"
    )
    tick_interval_s: float = Field(0.25, gt=0, description="Clock resolution of the engine")
    state_flush_interval_s: float = Field(
        1.0, gt=0, description="Longest time processed events wait before state is saved"
    )
    silences_refresh_s: float = Field(
        5.0, gt=0, description="How often silences added by other replicas are read"
    )
    http_timeout_s: float = Field(10.0, gt=0)
    retry_initial_s: float = Field(1.0, gt=0, description="First retry delay after a failure")
    retry_max_s: float = Field(300.0, gt=0, description="Retry delay cap (never gives up)")
    max_permanent_failures: int = Field(
        5, ge=1, description="Rejected (4xx) attempts before a notification is marked failed"
    )
    slack_api_url: str = "https://slack.com/api"
    telegram_api_url: str = "https://api.telegram.org"
    telegram_global_per_s: float = Field(30.0, gt=0, description="Messages/s per bot overall")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    # not an option: read from the environment only, so secrets never sit in a command line
    receiver_secrets: CliSuppress[dict[str, SecretStr]] = Field(
        default_factory=_env_secrets,
        description="Secrets by environment-variable name, referenced by receivers",
    )
