"""The last stop before the driver: driver parameters lose NUL and lone surrogates wherever
they are, however many clean rows come first, and clean parameters pass as they are; and
datetimes reach the DB as UTC whatever their zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pytest
from sqlalchemy import select

from state import models as m
from state.sanitise import REPLACEMENT, clean_column, clean_parameters
from state.store import StateStore

CLEAN = {"a": "plain", "b": 3, "c": None, "d": "Müller ☃ 日本"}


def test_one_bad_string_in_the_last_row_of_an_executemany_is_cleaned() -> None:
    rows = [dict(CLEAN) for _ in range(999)] + [{**CLEAN, "a": "nul\x00here",
                                                  "d": "lone \ud800 surrogate"}]
    cleaned = clean_parameters(rows)
    assert cleaned[-1]["a"] == "nulhere"
    assert cleaned[-1]["d"] == f"lone {REPLACEMENT} surrogate"
    assert cleaned[:-1] == rows[:-1]


def test_bad_strings_in_positional_rows_and_a_single_row_are_cleaned() -> None:
    assert clean_parameters([("ok", 1), ("x\x00", 2)]) == [("ok", 1), ("x", 2)]
    assert clean_parameters(("ok", "\udc00")) == ("ok", REPLACEMENT)
    assert clean_parameters({"k": "a\x00b"}) == {"k": "ab"}


def test_clean_parameters_are_passed_on_unchanged() -> None:
    rows = [dict(CLEAN) for _ in range(10)]
    assert clean_parameters(rows) is rows
    assert clean_parameters(CLEAN) is CLEAN
    assert clean_parameters(None) is None


def test_a_time_in_another_zone_is_stored_as_the_same_moment_in_utc(store: StateStore) -> None:
    """Datetimes already in UTC skip the conversion; any other zone is still converted."""
    pune = timezone(timedelta(hours=5, minutes=30))
    moment = datetime(2026, 12, 1, 17, 30, tzinfo=pune)
    [pid] = store.persons.create(["zone@example.com"], now=moment)
    store.persons.evaluated({pid: datetime(2026, 12, 2, 9, tzinfo=UTC)})
    with store.engine.connect() as connection:
        created, due = connection.execute(
            select(m.Person.created_at, m.Person.due_at).where(m.Person.id == pid)).one()
    assert created == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert created.tzinfo == UTC and due == datetime(2026, 12, 2, 9, tzinfo=UTC)


class _Code(StrEnum):
    NUL = "a\x00b"


@pytest.mark.parametrize(("column", "cleaned"), [
    ([None] * 999 + ["nul\x00"], [None] * 999 + ["nul"]),
    (["ok", 1, None, "\ud800"], ["ok", 1, None, REPLACEMENT]),     # text beside numbers
    ([_Code.NUL, "x"], ["ab", "x"]),                                # a kind of text
    (["", None, "\udfff\ud800"], ["", None, REPLACEMENT * 2]),
    (["\ud83d\ude00"], [REPLACEMENT * 2]),    # a pair as two code points is not text
])
def test_a_column_loses_nul_and_lone_surrogates_wherever_they_are(
        column: list[Any], cleaned: list[Any]) -> None:
    assert clean_column(column) == cleaned


def test_a_clean_column_is_passed_on_as_it_is() -> None:
    for column in ([1, 2.5, None, True, datetime(2026, 1, 1, tzinfo=UTC), Decimal(1), b"\x00"],
                   ["Müller ☃ 日本", "😀", None], []):
        assert clean_column(column) is column
