"""Business hours: adding hours skips nights, weekends and holidays, and follows DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from syncagent.engine import handoff_file
from syncagent.engine.calendar import BusinessCalendar, compile_calendar
from syncagent.engine.handoff_file import BusinessHours

NEW_YORK = ZoneInfo("America/New_York")


def calendar(**overrides: Any) -> BusinessCalendar:
    return compile_calendar(BusinessHours(**overrides))


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=NEW_YORK)   # type: ignore[misc]


def test_autumn_dst_change_keeps_opening_at_nine_local() -> None:
    # DST ends Sun 2026-11-01: Friday closes 17:00 EDT (21:00 UTC), Monday opens 09:00 EST
    # (14:00 UTC). One hour on Friday, three on Monday.
    due = calendar().add_business_hours(local(2026, 10, 30, 16), 4)
    assert due == datetime(2026, 11, 2, 17, 0, tzinfo=UTC)
    assert due.astimezone(NEW_YORK).hour == 12


def test_spring_dst_change_keeps_opening_at_nine_local() -> None:
    # DST starts Sun 2026-03-08: Friday 16:00 EST is 21:00 UTC, Monday 12:00 EDT is 16:00 UTC.
    due = calendar().add_business_hours(local(2026, 3, 6, 16), 4)
    assert due == datetime(2026, 3, 9, 16, 0, tzinfo=UTC)


def test_round_the_clock_hours_across_the_dst_night_count_real_hours() -> None:
    every_day = calendar(days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                         start="00:00", end="24:00")
    start = local(2026, 10, 31, 12)                       # Saturday, EDT
    due = every_day.add_business_hours(start, 24)
    assert due == start.astimezone(UTC) + timedelta(hours=24)
    assert due.astimezone(NEW_YORK).hour == 11            # the clock fell back an hour


def test_consecutive_holidays_are_both_skipped() -> None:
    cal = calendar(holidays=[date(2026, 12, 24), date(2026, 12, 25)])
    # Wed 23rd 16:00: one hour that day; Thu and Fri are holidays, then the weekend.
    due = cal.add_business_hours(local(2026, 12, 23, 16), 2)
    assert due.astimezone(NEW_YORK) == local(2026, 12, 28, 10)


def test_a_holiday_on_a_day_off_changes_nothing() -> None:
    plain = calendar().add_business_hours(local(2026, 12, 4, 16), 2)
    with_saturday_holiday = calendar(holidays=[date(2026, 12, 5)]).add_business_hours(
        local(2026, 12, 4, 16), 2)
    assert plain == with_saturday_holiday == local(2026, 12, 7, 10).astimezone(UTC)


def test_a_start_outside_hours_counts_from_the_next_opening() -> None:
    cal = calendar()
    assert cal.add_business_hours(local(2026, 12, 5, 11), 1) == \
        local(2026, 12, 7, 10).astimezone(UTC)            # Saturday -> Monday 09:00
    assert cal.add_business_hours(local(2026, 12, 7, 6), 1) == \
        local(2026, 12, 7, 10).astimezone(UTC)            # before opening
    assert cal.add_business_hours(local(2026, 12, 7, 19), 1) == \
        local(2026, 12, 8, 10).astimezone(UTC)            # after closing


def test_hours_that_end_at_closing_time_are_due_that_day() -> None:
    assert calendar().add_business_hours(local(2026, 12, 7, 13), 4) == \
        local(2026, 12, 7, 17).astimezone(UTC)


def test_other_timezones_and_weekends() -> None:
    # A Sunday-to-Thursday week in Dubai (UTC+4, no DST), 08:00-16:00.
    dubai = calendar(timezone="Asia/Dubai", days=["sun", "mon", "tue", "wed", "thu"],
                     start="08:00", end="16:00")
    friday_noon = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    assert dubai.add_business_hours(friday_noon, 1) == datetime(2026, 12, 6, 5, 0, tzinfo=UTC)


def test_a_one_minute_window_still_finds_the_hours() -> None:
    tiny = calendar(start="09:00", end="09:01", days=["mon"])
    due = tiny.add_business_hours(local(2026, 12, 7, 9), 1)     # 60 Mondays
    assert due.astimezone(NEW_YORK).date() == date(2026, 12, 7) + timedelta(weeks=59)


starts = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31),
                      timezones=st.just(UTC))
quarter_hours = st.integers(min_value=1, max_value=400).map(lambda n: n / 4)


@settings(max_examples=150, deadline=None)
@given(starts, quarter_hours, quarter_hours)
def test_adding_in_two_steps_equals_adding_at_once(start: datetime, a: float,
                                                   b: float) -> None:
    cal = calendar(holidays=[date(2026, 12, 24), date(2026, 12, 25), date(2027, 7, 5)])
    once = cal.add_business_hours(start, a + b)
    assert cal.add_business_hours(cal.add_business_hours(start, a), b) == once
    assert once > start
    weekday = once.astimezone(NEW_YORK)
    assert weekday.weekday() < 5 and time_in_window(weekday)


def time_in_window(moment: datetime) -> bool:
    """After opening (some time must be counted) and no later than closing."""
    return time(9) < moment.time() <= time(17)


def test_an_opening_time_the_spring_dst_change_skips_still_counts() -> None:
    # 02:30 does not exist in New York on 2026-03-08: that day opens at 03:30 EDT, an hour
    # of its window is gone, and the count goes on without error.
    night = calendar(days=["sun", "mon"], start="02:30", end="10:00")
    due = night.add_business_hours(local(2026, 3, 8, 0), 7)
    assert due.astimezone(NEW_YORK) == local(2026, 3, 9, 3, 0)   # 6.5 h Sunday + 0.5 Monday


def test_a_machine_without_a_timezone_database_is_told_so(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handoff_file, "known_timezones", frozenset)
    with pytest.raises(ValidationError, match=r"no timezone database.*install"):
        BusinessHours(timezone="America/New_York")
