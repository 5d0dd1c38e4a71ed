"""What the pipeline knows about remote records: which objects are people, their e-mail key,
their cross-system ids and wire values, all read from the registered systems' profiles
(connectors/registry.py); and how two values compare as a remote system stores them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.profile import PersonObject, SystemProfile
from connectors.registry import profile_of, registered

Ref = tuple[str, str, str]  # (system, object, remote id)
Profiles = Mapping[str, SystemProfile]


def person_object(system: str, object_name: str) -> PersonObject | None:
    """The registered person object ``object_name`` of ``system``, if it is one (the
    profile's `person_object`, as a plain loop: every record of every person evaluated is
    ordered by it, and its generator and next() cost more than the search)."""
    profile = profile_of(system)
    for person in profile.person_objects if profile is not None else ():
        if person.object == object_name:
            return person
    return None


def email_key(system: str, object_name: str, fields: Mapping[str, Any]) -> str | None:
    """The normalised e-mail a person record is matched on."""
    person = person_object(system, object_name)
    value = fields.get(person.email_field) if person else None
    if not isinstance(value, str) or "@" not in value:
        return None
    return value.strip().lower()


def is_person(system: str, object_name: str) -> bool:
    return person_object(system, object_name) is not None


def match_rank(system: str, object_name: str) -> int:
    person = person_object(system, object_name)
    return person.match_rank if person is not None else len(registered()) * 10


def cross_refs(system: str, object_name: str, fields: Mapping[str, Any]) -> list[Ref]:
    """Records of the other system (or the same) that this record says are the same person."""
    profile = profile_of(system)
    refs: list[Ref] = []
    for cross in profile.cross_ids if profile is not None else ():
        value = fields.get(cross.field) if cross.object == object_name else None
        if value:
            refs.append((*cross.target, str(value)))
    return refs


def same_value(desired: Any, current: Any) -> bool:
    """Equal as the remote system would store them (HubSpot returns every value as text)."""
    if type(desired) is str and type(current) is str and desired:
        return desired == current   # the common case, as the general path below ends it
    if desired is None or desired == "":
        return current is None or current == ""
    if current is None or current == "":
        return False
    if isinstance(desired, datetime):
        parsed = parse_when(current)
        return parsed is not None and abs((parsed - desired).total_seconds()) < 1
    if isinstance(desired, bool) or isinstance(current, bool):
        return str(desired).lower() == str(current).lower()
    if isinstance(desired, int | float):
        try:
            return abs(float(current) - float(desired)) < 1e-9
        except (TypeError, ValueError):
            return False
    return str(desired) == str(current)


def parse_when(value: Any) -> datetime | None:
    """A datetime from either system's wire formats (ISO with +0000 / Z, epoch ms)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def wire_value(system: str, value: Any) -> Any:
    """A value as the system's API takes it (its profile's conversion)."""
    profile = profile_of(system)
    return profile.wire(value) if profile is not None else value
