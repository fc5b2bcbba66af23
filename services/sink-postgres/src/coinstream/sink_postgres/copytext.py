"""Rows as PostgreSQL ``COPY ... (FORMAT text)`` lines (pure).

Text COPY of pre-encoded lines costs the client about 0.5 µs per row against 9-11 µs for
asyncpg's binary ``copy_records_to_table`` (which builds ``Decimal``/``datetime`` wire values in
the event loop), with the same server CPU (measured on this machine, see
``docs/sink-postgres.md``). The hot path (``fastpath.py``) writes lines straight from the JSON;
this module encodes any other row the same way, so both paths send identical bytes.

Text format: columns separated by a tab, one row per line, ``\\N`` for NULL, and a backslash,
tab, newline or carriage return inside a value escaped with a backslash.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from coinstream.sink_postgres.tables import Row

NULL = "\\N"
_special = re.compile(r"[\\\t\n\r]").search


def escape(text: str) -> str:
    """A string value for a text COPY line (unchanged unless it holds a special character)."""
    if _special(text) is None:
        return text
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def timestamp(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC: the canonical wire form, read exactly by
    PostgreSQL whatever the session time zone."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def value_text(value: Any) -> str:
    """One column value as COPY text. Only the scalar types the sink's row builders produce."""
    if value is None:
        return NULL
    t = type(value)
    if t is str:
        return escape(value)
    if t is bool:
        return "t" if value else "f"
    if t is int:
        return str(value)
    if t is Decimal:
        return format(value, "f")  # positional, like the wire form: 1E-13 -> 0.0000000000001
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError("naive datetime in a row")
        return timestamp(value)
    raise TypeError(f"no COPY text encoding for {t.__name__}")


def copy_line(row: Row) -> str:
    """A whole row as one text COPY line (with its newline)."""
    return "\t".join([value_text(v) for v in row]) + "\n"
