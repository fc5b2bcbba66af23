"""Structured JSON logging (one object per line) with secret masking."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_SECRET_PATTERNS = [
    re.compile(r"(?i)(api[_-]?key|token|secret|password|authorization)([\"'=: ]+)([^\s\"'&,]+)"),
    re.compile(r"(?i)(/bot)(\d+:[A-Za-z0-9_-]+)"),  # Telegram bot token in URLs
    re.compile(r"(hooks\.slack\.com/services/)([A-Za-z0-9/]+)"),
    re.compile(r"(://[^/:@\s]+:)([^@\s/]+)(?=@)"),  # password in a URL (DSNs)
]
_SECRET_KEY = re.compile(
    r"(?i)(api[_-]?key|token|secret|passw(or)?d|authorization|credential|webhook|cookie)"
)
"""An ``extra`` field whose name matches holds a secret as a whole: its value is not logged."""
MASK = "***"


def mask_secrets(text: str) -> str:
    """Replace things that look like credentials with ``***``."""
    for pattern in _SECRET_PATTERNS:
        if pattern.groups == 3:
            text = pattern.sub(rf"\1\2{MASK}", text)
        else:
            text = pattern.sub(rf"\1{MASK}", text)
    return text


def is_secret_name(name: str) -> bool:
    """Whether a field or variable called ``name`` holds a credential as a whole."""
    return bool(_SECRET_KEY.search(name))


def mask_value(key: str, value: Any) -> Any:
    """``value`` of the log field ``key`` with credentials masked, recursively.

    A field named like a secret (``token``, ``api_key``, ``password``, ``webhook_url``...)
    is masked whole; strings anywhere else go through ``mask_secrets``; numbers, booleans
    and ``None`` are kept; anything else is logged as its masked ``str()``.
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if is_secret_name(key):
        return MASK
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, Mapping):
        return {str(k): mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [mask_value(key, v) for v in value]
    return mask_secrets(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the message, every ``extra`` field and tracebacks masked."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": mask_secrets(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = mask_value(key, value)
        if record.exc_info:
            entry["exc"] = mask_secrets(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Plain lines for people, masked like the JSON form."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Route all logging to stderr, as JSON lines (or plain text for people)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
