"""Field mappings: remote records of one person -> canonical profile, and back.

Sync rules decide which system's value becomes canonical:
``prefer_salesforce_unless_blank``, ``always_salesforce``, ``always_hubspot``,
``two_way`` (the most recently modified record wins) and ``dont_sync`` (read for rules,
never written across).

A field with ``ranges`` writes a number as the option of the range it falls in, and reads an
option back as a number in that range (see ``ranges.py``).

A field with a ``translate`` table is a closed set: a value the table does not know is never
written (the target keeps what it holds) and is reported as a :class:`Miss`, so a HubSpot
code can never reach a Salesforce picklist that lacks it. Any spelling the table knows, of
either system, reads as its canonical value, so a value read back after a write maps to what
was written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from syncagent.engine.normalise import COERCE, blank, value_problem
from syncagent.engine.ranges import RangeTable, compile_ranges
from syncagent.engine.rule_files import FieldMapping


class RemoteRecordLike(Protocol):
    """What ``map_person`` needs of a record (connectors' RemoteRecord fits)."""

    @property
    def system(self) -> str: ...
    @property
    def object(self) -> str: ...
    @property
    def fields(self) -> Mapping[str, Any]: ...
    @property
    def modstamp(self) -> datetime: ...
    @property
    def deleted(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class CompiledField:
    name: str
    sync: str
    type: str
    sf_lead: str | None
    sf_contact: str | None
    hubspot: str | None
    coerce: Callable[[Any], Any]
    to_canonical: Mapping[str, Mapping[str, str]]   # system -> folded remote value -> canonical
    to_remote: Mapping[str, Mapping[str, str]]      # system -> canonical -> remote value
    line: int = 0                                   # where fields.yaml defines it
    ranges: Mapping[str, RangeTable] = field(default_factory=dict)  # system -> its ranges

    def remote_name(self, system: str, object_name: str) -> str | None:
        if system == "hubspot":
            return self.hubspot
        return self.sf_contact if object_name.lower() == "contact" else self.sf_lead


@dataclass(frozen=True, slots=True)
class Miss:
    """A value a translation table does not know: it was not written to ``system``."""

    field: str          # canonical field name
    system: str
    object: str
    remote_field: str
    value: Any
    line: int           # the field's line in fields.yaml


SYSTEMS = ("salesforce", "hubspot")


def compile_field(spec: FieldMapping, line: int = 0) -> CompiledField:
    to_canonical: dict[str, dict[str, str]] = {s: {} for s in SYSTEMS}
    to_remote: dict[str, dict[str, str]] = {s: {} for s in SYSTEMS}
    for t in spec.translate:
        for system in SYSTEMS:
            remote = getattr(t, system) or t.canonical
            to_remote[system][t.canonical] = remote
            for spelling in (remote, t.canonical, *t.aliases):
                to_canonical[system].setdefault(spelling.casefold(), t.canonical)
    # The other system's spellings read too (after the system's own): a value copied across
    # by someone, or by an older version of the agent, still means the same thing.
    for system, other in (SYSTEMS, SYSTEMS[::-1]):
        for t in spec.translate:
            spelling = getattr(t, other) or t.canonical
            to_canonical[system].setdefault(spelling.casefold(), t.canonical)
    return CompiledField(spec.name, spec.sync, spec.type, spec.salesforce.lead,
                         spec.salesforce.contact, spec.hubspot, COERCE[spec.type],
                         to_canonical, to_remote, line, compile_ranges(spec.ranges))


@dataclass(frozen=True)
class CanonicalProfile:
    """Canonical values plus, per field, the system the value came from."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


def _read(spec: CompiledField, record: RemoteRecordLike) -> tuple[bool, Any]:
    name = spec.remote_name(record.system, record.object)
    if name is None or name not in record.fields:
        return False, None
    raw = record.fields[name]
    if record.system in spec.ranges:
        raw = spec.ranges[record.system].read(raw)
    value = spec.coerce(raw)
    if isinstance(value, str) and spec.to_canonical[record.system]:
        value = spec.to_canonical[record.system].get(value.casefold(), value)
    return True, value


def record_problems(record: RemoteRecordLike, fields: Sequence[CompiledField]
                    ) -> list[tuple[str, str]]:
    """(remote field, reason) for each mapped value of this record that reads as blank
    because it cannot be used (NaN, a number beyond any field's precision)."""
    problems: list[tuple[str, str]] = []
    for spec in fields:
        name = spec.remote_name(record.system, record.object)
        if name is None or name not in record.fields:
            continue
        reason = value_problem(spec.type, record.fields[name])
        if reason is not None:
            problems.append((name, reason))
    return problems


def _latest(records: Sequence[RemoteRecordLike], system: str) -> list[RemoteRecordLike]:
    mine = [r for r in records if r.system == system and not r.deleted]
    return sorted(mine, key=lambda r: r.modstamp, reverse=True)


def map_person(records: Sequence[RemoteRecordLike],
               fields: Sequence[CompiledField]) -> CanonicalProfile:
    """Merge one person's records (SF Lead/Contact, HubSpot contact) into canonical values."""
    salesforce = _latest(records, "salesforce")
    hubspot = _latest(records, "hubspot")
    profile = CanonicalProfile()
    for spec in fields:
        source, value = _pick(spec, salesforce, hubspot)
        if source is not None:
            profile.values[spec.name] = value
            profile.sources[spec.name] = source
    return profile


def _first_value(spec: CompiledField, records: list[RemoteRecordLike]
                 ) -> tuple[RemoteRecordLike | None, Any]:
    blank_holder: RemoteRecordLike | None = None
    for record in records:
        present, value = _read(spec, record)
        if present and not blank(value):
            return record, value
        if present and blank_holder is None:
            blank_holder = record
    return blank_holder, None


def _pick(spec: CompiledField, salesforce: list[RemoteRecordLike],
          hubspot: list[RemoteRecordLike]) -> tuple[str | None, Any]:
    sf_record, sf_value = _first_value(spec, salesforce)
    hs_record, hs_value = _first_value(spec, hubspot)
    if spec.sync == "always_salesforce":
        return ("salesforce", sf_value) if sf_record is not None else (None, None)
    if spec.sync == "always_hubspot":
        return ("hubspot", hs_value) if hs_record is not None else (None, None)
    if spec.sync == "two_way" and sf_record is not None and hs_record is not None:
        if hs_record.modstamp > sf_record.modstamp and not blank(hs_value):
            return "hubspot", hs_value
        if blank(sf_value) and not blank(hs_value):
            return "hubspot", hs_value
        return "salesforce", sf_value
    # prefer_salesforce_unless_blank, dont_sync (read only), two_way with one side
    if sf_record is not None and not blank(sf_value):
        return "salesforce", sf_value
    if hs_record is not None:
        return "hubspot", hs_value
    return ("salesforce", None) if sf_record is not None else (None, None)


def remote_values(profile: Mapping[str, Any], fields: Sequence[CompiledField], system: str,
                  object_name: str, *, held: Mapping[str, Any] | None = None,
                  misses: list[Miss] | None = None) -> dict[str, Any]:
    """Desired remote field values for one record, honouring each field's sync rule.

    ``held`` (the record's current fields) keeps a spelling the record already has for the
    same canonical value (an alias is not rewritten); untranslatable values are left out and
    appended to ``misses``.
    """
    out: dict[str, Any] = {}
    for spec in fields:
        if spec.sync == "dont_sync" or spec.name not in profile:
            continue
        if spec.sync == "always_salesforce" and system == "salesforce":
            continue
        if spec.sync == "always_hubspot" and system == "hubspot":
            continue
        name = spec.remote_name(system, object_name)
        if name is None:
            continue
        value = profile[spec.name]
        if system in spec.ranges and not blank(value):
            value = spec.ranges[system].write(value, (held or {}).get(name))
            if value is None:
                if misses is not None:
                    misses.append(Miss(spec.name, system, object_name, name,
                                       profile[spec.name], spec.line))
                continue
        elif isinstance(value, str) and spec.to_remote[system]:
            translated = _translate(spec, system, value, (held or {}).get(name))
            if translated is None:
                if misses is not None:
                    misses.append(Miss(spec.name, system, object_name, name, value, spec.line))
                continue
            value = translated
        out[name] = value
    return out


def _translate(spec: CompiledField, system: str, value: str, held: Any) -> str | None:
    """The remote spelling of a canonical value; None when the table does not know it."""
    canonical = spec.to_canonical[system].get(value.casefold())
    if canonical is None:
        return None
    if isinstance(held, str) and spec.to_canonical[system].get(held.casefold()) == canonical:
        return held
    return spec.to_remote[system].get(canonical)
