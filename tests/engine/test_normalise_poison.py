"""Coercion never raises on hostile values: overflowing numbers, NaN, infinity and dates beyond
the calendar read as blank, and `value_problem` says why so the pipeline can report them."""

from __future__ import annotations

import math
from typing import Any

import pytest

from syncagent.engine.normalise import (
    COERCE,
    to_date,
    to_integer,
    to_number,
    value_problem,
)

HOSTILE: list[Any] = ["9" * 400, math.nan, math.inf, -math.inf, 10**400, "1" * 5000,
                      "nan", "Infinity", "1e999", 1e308 * 10, "9" * 19, -(10**19), "\x00",
                      "\ud800", 2**63, 1.7976931348623157e308]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("kind", sorted(COERCE))
def test_no_coercion_raises_on_hostile_values(kind: str, value: Any) -> None:
    result = COERCE[kind](value)
    if isinstance(result, float):
        assert math.isfinite(result)


def test_numbers_beyond_any_fields_precision_read_as_blank_and_are_reported() -> None:
    assert to_integer("9" * 400) is None
    assert to_integer(math.nan) is None and to_number(math.inf) is None
    assert to_integer(10**19) is None and to_number("99999999999999999999") is None
    assert to_integer("999999999999999999") == 999_999_999_999_999_999
    assert value_problem("integer", "9" * 400) and value_problem("integer", math.nan)
    assert value_problem("number", 10**19)
    assert value_problem("integer", "51-200") is None and value_problem("string", "x") is None


def test_dates_beyond_the_calendar_read_as_blank() -> None:
    assert to_date(math.nan) is None and to_date(10**20) is None
    assert to_date(1_700_000_000_000) == "2023-11-14T22:13:20+00:00"
