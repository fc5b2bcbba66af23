"""``python -m coinstream.alerts``: run the alerts service."""

from __future__ import annotations

import sys

from coinstream.alerts import app
from coinstream.alerts.delivery import check_secrets
from coinstream.alerts.errors import RulesError
from coinstream.alerts.rules import load_rules
from coinstream.alerts.settings import AlertsSettings
from coinstream.runtime import ConfigurationError, configure_logging, run


def main() -> None:
    settings = AlertsSettings()
    configure_logging(settings.service_name, settings.log_level, settings.log_format)
    try:
        check_secrets(settings, load_rules(settings.rules_file))
    except (RulesError, ConfigurationError) as exc:
        print(f"alerts: refusing to start: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(run(lambda stop: app.main(settings, stop), settings.shutdown_timeout_s))


if __name__ == "__main__":
    main()
