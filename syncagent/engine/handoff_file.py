"""The hand-off settings of routing.yaml: business hours, the SLA schedule and who stands in
for an out-of-office rep. Kept apart from ``rule_files`` (which imports them) so each module
stays about one file's concerns."""

from __future__ import annotations

import difflib
import zoneinfo
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from syncagent.engine.operators import StrictModel

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SLA_HOURS = 8760  # a year of hours: more is a typo, and bounds the calendar's walk


def _clock_text(value: Any) -> Any:
    # YAML 1.1 reads an unquoted 17:00 as the base-60 number 1020: say how to write it.
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"a time of day must be quoted text like \"17:00\" (found the number "
                         f"{value:g}: YAML reads an unquoted 17:00 as a number); write it in "
                         "quotes")
    if not isinstance(value, str):
        return value
    text = value.strip()
    parts = text.split(":")
    valid = len(parts) == 2 and all(p.isdigit() and len(p) == 2 for p in parts) \
        and ((0 <= int(parts[0]) <= 23 and 0 <= int(parts[1]) <= 59) or text == "24:00")
    if not valid:
        raise ValueError(f"'{value}' is not a time of day; write \"HH:MM\" in quotes, from "
                         "\"00:00\" to \"24:00\" (24:00 is midnight at the end of the day)")
    return text


ClockTime = Annotated[str, BeforeValidator(_clock_text)]


def _holiday(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"holiday '{value}' is not a date; write YYYY-MM-DD, e.g. 2026-12-25")


Holiday = Annotated[date, BeforeValidator(_holiday)]


@cache
def known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def minutes_of(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


class BusinessHours(StrictModel):
    """When reps work, as Salesforce's Business Hours: the SLA counts only these hours."""

    timezone: str = Field("America/New_York", description=(
        "IANA timezone name, e.g. America/New_York or Europe/London."))
    days: list[Weekday] = Field(default_factory=lambda: list[Weekday](
        ["mon", "tue", "wed", "thu", "fri"]), min_length=1, description="Working days.")
    start: ClockTime = Field("09:00", description="Opening time, \"HH:MM\" local.")
    end: ClockTime = Field("17:00", description="Closing time, \"HH:MM\" local (24:00 allowed).")
    holidays: list[Holiday] = Field(default_factory=list, description=(
        "Dates (YYYY-MM-DD, local) with no business hours."))

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if not known_timezones():
            raise ValueError("this machine has no timezone database, so no timezone can be "
                             "read; install the operating system's tzdata package")
        if value not in known_timezones():
            close = difflib.get_close_matches(value, sorted(known_timezones()), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"unknown timezone '{value}'{hint}; use an IANA name such as "
                             "America/New_York or Europe/London")
        return value

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: str, info: ValidationInfo) -> str:
        start = info.data.get("start")
        if start is not None and minutes_of(value) <= minutes_of(start):
            raise ValueError(f"end {value} is not after start {start}; business hours run "
                             "from start to end on the same day (use \"24:00\" for midnight)")
        return value


def _recipient_rule(value: str, allowed: tuple[str, ...], key: str) -> str:
    """``manager`` / ``pool`` style words, or ``user:<email or id>``."""
    if value in allowed or (value.startswith("user:") and value[5:].strip()):
        return value
    choices = " | ".join((*allowed, "user:<email or Salesforce user id>"))
    raise ValueError(f"{key} '{value}' is not one of: {choices}; a Salesforce Task cannot be "
                     "owned by a queue, so a queue cannot be named here")


class Sla(StrictModel):
    """The hand-off deadlines, in business hours from the hand-over of an MQL to a user."""

    remind_after_hours: float = Field(4, gt=0, le=MAX_SLA_HOURS)
    escalate_after_hours: float = Field(24, gt=0, le=MAX_SLA_HOURS)
    reassign_after_hours: float = Field(48, gt=0, le=MAX_SLA_HOURS)
    escalate_to: str = Field("manager", description=(
        "Who gets the escalation: manager (the owner's User.ManagerId) or user:<email or id>."))
    qualify_within_days: float = Field(7, gt=0, le=365, description=(
        "Calendar days an accepted lead (SAL) has to reach SQL, recycle or disqualify; the "
        "owner is reminded then and again at 1.5 times this."))

    @field_validator("escalate_to")
    @classmethod
    def _escalate_to(cls, value: str) -> str:
        return _recipient_rule(value, ("manager",), "escalate_to")

    @model_validator(mode="after")
    def _increasing(self) -> Sla:
        if not (self.remind_after_hours < self.escalate_after_hours
                < self.reassign_after_hours):
            raise ValueError("sla hours must increase: remind < escalate < reassign")
        return self


def out_of_office_rule(value: str) -> str:
    """Validate routing.yaml's ``out_of_office``: manager | pool | user:<email or id>."""
    return _recipient_rule(value, ("manager", "pool"), "out_of_office")
