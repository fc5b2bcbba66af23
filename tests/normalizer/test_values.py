"""Exact numbers and every time form, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from coinstream.normalizer.errors import ParseError
from coinstream.normalizer.values import loads, parse_time, to_decimal


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"v": 1e-12}', Decimal("1E-12")),
        ('{"v": 761019388975043000000}', Decimal("761019388975043000000")),
        ('{"v": 1e20}', Decimal("1E+20")),
        ('{"v": "0.35280000"}', Decimal("0.35280000")),
        ('{"v": 0.10025}', Decimal("0.10025")),
        ('{"v": 13834774380200032777}', Decimal("13834774380200032777")),
        ('{"v": -1948}', Decimal(-1948)),
    ],
)
def test_numbers_are_exact_whether_numbers_or_strings(text: str, expected: Decimal) -> None:
    value = to_decimal(loads(text)["v"])
    assert value == expected
    assert str(value) == str(expected)


@pytest.mark.parametrize("bad", [None, True, "abc", "NaN", "Infinity", [], 1.5])
def test_non_numbers_and_non_finite_values_are_rejected(bad: object) -> None:
    with pytest.raises(ParseError):
        to_decimal(bad)


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (1711356300, "s", datetime(2024, 3, 25, 8, 45, tzinfo=UTC)),
        ("1639958400", "s", datetime(2021, 12, 20, tzinfo=UTC)),
        (1672515782136, "auto", datetime(2022, 12, 31, 19, 43, 2, 136000, tzinfo=UTC)),
        (1672515782136123, "auto", datetime(2022, 12, 31, 19, 43, 2, 136123, tzinfo=UTC)),
        (1672515782136123999, "auto", datetime(2022, 12, 31, 19, 43, 2, 136123, tzinfo=UTC)),
        (
            "2023-02-09T20:30:37.167359596Z",
            "auto",
            datetime(2023, 2, 9, 20, 30, 37, 167359, tzinfo=UTC),
        ),
        (
            "2023-09-25T09:04:31.742648Z",
            "auto",
            datetime(2023, 9, 25, 9, 4, 31, 742648, tzinfo=UTC),
        ),
        ("2024-04-07T16:49:31.736Z", "auto", datetime(2024, 4, 7, 16, 49, 31, 736000, tzinfo=UTC)),
        ("2024-04-07T15:23:02+00:00", "auto", datetime(2024, 4, 7, 15, 23, 2, tzinfo=UTC)),
        ("2024-04-07T17:23:02+02:00", "auto", datetime(2024, 4, 7, 15, 23, 2, tzinfo=UTC)),
        (
            "2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105",
            "auto",
            datetime(2023, 6, 23, 20, 31, 56, 121961, tzinfo=UTC),
        ),
        ("2009-01-03", "auto", datetime(2009, 1, 3, tzinfo=UTC)),
    ],
)
def test_every_time_form_parses_to_utc(value: object, unit: str, expected: datetime) -> None:
    assert parse_time(value, unit) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["yesterday", "2024-04-07T15:23:02", "", None, [1]])
def test_unrecognised_or_naive_times_are_rejected(bad: object) -> None:
    with pytest.raises(ParseError):
        parse_time(bad)
