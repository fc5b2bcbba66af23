"""Text COPY encoding of rows (pure): NULLs, escapes, numbers and UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from coinstream.sink_postgres.copytext import copy_line, escape, timestamp, value_text


def test_special_characters_are_escaped_and_plain_text_is_untouched() -> None:
    assert escape("BTC-USDT") == "BTC-USDT"
    assert escape("a\tb\nc\rd\\e") == "a\\tb\\nc\\rd\\\\e"
    assert escape("\\N") == "\\\\N"  # a literal backslash-N string is not NULL


def test_values_of_every_row_type() -> None:
    assert value_text(None) == "\\N"
    assert value_text(True) == "t" and value_text(False) == "f"
    assert value_text(7) == "7"
    assert value_text(Decimal("1.23456789E-13")) == "0.000000000000123456789"
    assert value_text(Decimal("1E+3")) == "1000"
    assert Decimal(value_text(Decimal("-0"))) == 0
    assert value_text("x\ty") == "x\\ty"


def test_timestamps_are_written_in_utc_with_microseconds() -> None:
    t = datetime(2026, 3, 1, 13, 0, 0, 250, tzinfo=timezone(timedelta(hours=1)))
    assert timestamp(t) == "2026-03-01T12:00:00.000250Z"
    assert value_text(datetime(2026, 3, 1, tzinfo=UTC)) == "2026-03-01T00:00:00.000000Z"


def test_naive_timestamps_and_unknown_types_are_refused() -> None:
    with pytest.raises(ValueError):
        value_text(datetime(2026, 3, 1))
    with pytest.raises(TypeError):
        value_text(1.5)  # floats never reach a row
    with pytest.raises(TypeError):
        value_text(["a"])


def test_a_row_is_one_tab_separated_line() -> None:
    line = copy_line(("a", None, 3, Decimal("1.50")))
    assert line == "a\t\\N\t3\t1.50\n"
