"""Business hours, as Salesforce's BusinessHours.add counts them: only the working hours of
working days that are not holidays, in the configured timezone.

Each day's window is built from the local wall-clock times and converted to UTC, so a DST
change moves the window with the clock (09:00 stays 09:00 local) and the hours counted are
real elapsed hours inside the windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from syncagent.engine.handoff_file import WEEKDAYS, BusinessHours, minutes_of

_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    zone: ZoneInfo
    weekdays: frozenset[int]        # date.weekday(): Monday is 0
    opens: time
    closes: time | None             # None: midnight at the end of the day ("24:00")
    holidays: frozenset[date]
    window_minutes: int             # a day's business minutes, DST aside

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The day's business hours as aware UTC datetimes, or None on a day off."""
        if day.weekday() not in self.weekdays or day in self.holidays:
            return None
        opens = datetime.combine(day, self.opens, tzinfo=self.zone)
        closes = datetime.combine(day + _ONE_DAY, time(0), tzinfo=self.zone) \
            if self.closes is None else datetime.combine(day, self.closes, tzinfo=self.zone)
        return opens.astimezone(UTC), closes.astimezone(UTC)

    def add_business_hours(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` business hours after ``start`` (aware). A start outside
        business hours counts from the next opening; the result is aware UTC."""
        return _add_cached(self, start, hours)

    def _add(self, start: datetime, hours: float) -> datetime:
        remaining = timedelta(hours=hours)
        day = start.astimezone(self.zone).date()
        for _ in range(self._days_bound(hours)):
            opened = self.window(day)
            if opened is not None:
                begin, end = max(opened[0], start), opened[1]
                if begin < end:
                    if remaining <= end - begin:
                        return begin + remaining
                    remaining -= end - begin
            day += _ONE_DAY
        raise ValueError(f"no business hours found within {hours:g} hours' reach of {start}")

    def _days_bound(self, hours: float) -> int:
        """Days that surely hold ``hours`` business hours: the schema needs a working day a
        week, a DST night shortens a window by an hour at most, and each holiday can cost a
        week. It only guards the walk against a config the schema should have refused."""
        shortest_week = len(self.weekdays) * max(self.window_minutes - 60, 1)
        weeks = int(hours * 60 // shortest_week) + 2
        return 7 * (weeks + len(self.holidays))


@lru_cache(maxsize=4096)
def _add_cached(calendar: BusinessCalendar, start: datetime, hours: float) -> datetime:
    # A cycle hands many leads over at the same moment, and each gets three steps.
    return calendar._add(start, hours)


def compile_calendar(spec: BusinessHours) -> BusinessCalendar:
    closes = None if spec.end == "24:00" else _clock(spec.end)
    return BusinessCalendar(ZoneInfo(spec.timezone),
                            frozenset(WEEKDAYS.index(d) for d in spec.days),
                            _clock(spec.start), closes, frozenset(spec.holidays),
                            minutes_of(spec.end) - minutes_of(spec.start))


def _clock(text: str) -> time:
    minutes = minutes_of(text)
    return time(minutes // 60, minutes % 60)
