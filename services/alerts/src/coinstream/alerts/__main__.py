"""``coinstream-alerts`` (or ``python -m coinstream.alerts``): run the alerts service.

The rules file and the receivers' secrets are checked before anything connects: a problem
is one line on stderr and exit code 2, like every other configuration error.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from coinstream.alerts import app
from coinstream.alerts.delivery import check_secrets
from coinstream.alerts.rules import load_rules
from coinstream.alerts.settings import AlertsSettings
from coinstream.runtime import configure_logging, run
from coinstream.runtime.cli import configuration_errors, load_settings

PROG = "coinstream-alerts"


def main(argv: Sequence[str] | None = None) -> int:
    settings, _ = load_settings(
        AlertsSettings,
        argv,
        prog=PROG,
        description="Evaluate alert rules on the canonical streams and notify Slack, "
        "Telegram, Discord, e-mail and webhooks. Receiver secrets are the ALERTS_* variables "
        "the rules file names (url_env, token_env...).",
        distribution="coinstream-alerts",
    )
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    with configuration_errors(PROG, AlertsSettings):
        check_secrets(settings, load_rules(settings.rules_file))
    return run(lambda stop: app.main(settings, stop), settings.shutdown_timeout_s)


if __name__ == "__main__":
    sys.exit(main())
