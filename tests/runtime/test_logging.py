"""Log lines never carry credentials: message, ``extra`` fields and tracebacks are masked."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from coinstream.runtime.logging import JsonFormatter, TextFormatter, mask_secrets

TOKEN = "123456789:AAH-telegram-secret_token"


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("coinstream.test", logging.INFO, __file__, 1, msg, (), None)
    record.__dict__.update(extra)
    return record


def test_a_telegram_token_in_extra_is_not_printed() -> None:
    """The reported leak: the token as its own field, inside a URL field and nested."""
    line = JsonFormatter("alerts").format(
        _record(
            "notification sent",
            token=TOKEN,
            url=f"https://api.telegram.org/bot{TOKEN}/sendMessage",
            request={"headers": {"Authorization": "Bearer abc.def"}, "chat_id": 42},
            receivers=[f"https://api.telegram.org/bot{TOKEN}/sendMessage"],
            attempts=3,
        )
    )
    assert TOKEN not in line and "abc.def" not in line and "telegram-secret" not in line
    entry = json.loads(line)
    assert entry["token"] == "***"
    assert entry["url"] == "https://api.telegram.org/bot***/sendMessage"
    assert entry["request"] == {"headers": {"Authorization": "***"}, "chat_id": 42}
    assert entry["attempts"] == 3 and entry["msg"] == "notification sent"


def test_other_secrets_in_extra_fields_are_masked() -> None:
    line = JsonFormatter("sink").format(
        _record(
            "connecting",
            dsn="postgresql://sink:hunter2@db:5432/coinstream",
            webhook_url="https://hooks.slack.com/services/T0/B0/verysecretpath",
            error="401 for https://x/y?api_key=k-123",
            symbol="BTC-USDT",
        )
    )
    assert "hunter2" not in line and "verysecretpath" not in line and "k-123" not in line
    entry = json.loads(line)
    assert entry["dsn"] == "postgresql://sink:***@db:5432/coinstream"
    assert entry["symbol"] == "BTC-USDT"


def test_text_format_is_masked_too() -> None:
    line = TextFormatter().format(_record(f"GET https://api.telegram.org/bot{TOKEN}/getMe"))
    assert TOKEN not in line and "/bot***/getMe" in line


def test_mask_secrets_keeps_ordinary_text() -> None:
    text = "trade BTC-USDT 94012.35 at https://stream.example/ws?streams=btcusdt@trade"
    assert mask_secrets(text) == text


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_configured_service_logger_masks_extra_fields(fmt: str) -> None:
    """Through configure_logging, as a service logs, in a separate process's stderr."""
    code = (
        "import logging; from coinstream.runtime import configure_logging; "
        f"configure_logging('alerts', 'INFO', {fmt!r}); "
        f"logging.getLogger('x').warning('send failed %s', 'https://api.telegram.org/bot{TOKEN}/x', "
        f"extra={{'bot_token': {TOKEN!r}}})"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "send failed" in out.stderr and TOKEN not in out.stderr
