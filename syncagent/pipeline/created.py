"""When a person was created, from their mirrored records: the scoring rules' early bands
and the persons file both count from it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from operator import attrgetter
from typing import Any

from connectors.profile import SystemProfile
from state.store import MirrorRow


def moment(value: Any) -> datetime | None:
    """An ISO date-time or date (as the mirror keeps them) -> aware UTC; None if unreadable."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    text = value.strip()   # (once: every person's records are read)
    if not text:
        return None
    text = text.replace("Z", "+00:00")
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def person_created(records: Sequence[MirrorRow], profiles: Mapping[str, SystemProfile]
                   ) -> datetime | None:
    """When the person became a lead: their CRM record's creation (the CRM's lead or contact),
    else the earliest creation among their other records; None when no record says."""
    crm_times: list[datetime] = []
    other_times: list[datetime] = []
    for r in records:
        profile = profiles.get(r.system)
        if profile is None or not profile.created_field or not _is_person(r.object, profile):
            continue
        when = moment(r.fields.get(profile.created_field))
        if when is not None:
            (crm_times if profile.crm is not None else other_times).append(when)
    times = crm_times or other_times
    return min(times) if times else None



_OBJECT = attrgetter("object")


def _is_person(object_name: str, profile: SystemProfile) -> bool:
    """``profile.person_object(object_name) is not None``, searched in C (a generator and
    next() per record cost ~1 µs more; this runs for every record of every person)."""
    return object_name in map(_OBJECT, profile.person_objects)
