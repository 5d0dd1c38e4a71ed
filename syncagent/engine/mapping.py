"""Field mappings: remote records of one person -> canonical profile, and back.

Sync rules decide which system's value becomes canonical: ``prefer_X_unless_blank`` and
``always_X`` name a system X (fields.yaml has ``prefer_salesforce_unless_blank``,
``always_salesforce``, ``always_hubspot``); ``two_way`` (the most recently modified record
wins) and ``dont_sync`` (read for rules, never written across) fall back to the default
rule's system when there is nothing to compare. No system is named here: a field's remote
names are a lookup by (system, object).

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
from syncagent.engine.rule_files import DEFAULT_SYNC, FieldMapping


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
    names: Mapping[tuple[str, str], str]            # (system, casefolded object) -> field
    coerce: Callable[[Any], Any]
    to_canonical: Mapping[str, Mapping[str, str]]   # system -> folded remote value -> canonical
    to_remote: Mapping[str, Mapping[str, str]]      # system -> canonical -> remote value
    line: int = 0                                   # where fields.yaml defines it
    source: str = ""                                # the system the sync rule prefers
    only_source: bool = False                       # always_<source>: no other system counts
    ranges: Mapping[str, RangeTable] = field(default_factory=dict)  # system -> its ranges

    def remote_name(self, system: str, object_name: str) -> str | None:
        return self.names.get((system, object_name.casefold()))


@dataclass(frozen=True, slots=True)
class Miss:
    """A value a translation table does not know: it was not written to ``system``."""

    field: str          # canonical field name
    system: str
    object: str
    remote_field: str
    value: Any
    line: int           # the field's line in fields.yaml


def preferred_system(rule: str) -> str:
    """The system a sync rule names (``always_X``, ``prefer_X_unless_blank``); for a rule that
    names none, the default rule's."""
    for prefix, suffix in (("always_", ""), ("prefer_", "_unless_blank")):
        if rule.startswith(prefix) and rule.endswith(suffix) and len(rule) > len(prefix + suffix):
            return rule[len(prefix):len(rule) - len(suffix)]
    return preferred_system(DEFAULT_SYNC)


def compile_field(spec: FieldMapping, line: int = 0) -> CompiledField:
    spellings = [t.spellings() for t in spec.translate]
    systems = list(dict.fromkeys(system for names in spellings for system in names))
    to_canonical: dict[str, dict[str, str]] = {s: {} for s in systems}
    to_remote: dict[str, dict[str, str]] = {s: {} for s in systems}
    for t, names in zip(spec.translate, spellings, strict=True):
        for system in systems:
            remote = names.get(system) or t.canonical
            to_remote[system][t.canonical] = remote
            for spelling in (remote, t.canonical, *t.aliases):
                to_canonical[system].setdefault(spelling.casefold(), t.canonical)
    # The other systems' spellings read too (after the system's own): a value copied across
    # by someone, or by an older version of the agent, still means the same thing.
    for system in systems:
        for other in (s for s in systems if s != system):
            for t, names in zip(spec.translate, spellings, strict=True):
                spelling = names.get(other) or t.canonical
                to_canonical[system].setdefault(spelling.casefold(), t.canonical)
    field_names = {(system, obj.casefold()): name
                   for (system, obj), name in spec.remote_names().items()}
    return CompiledField(spec.name, spec.sync, spec.type, field_names, COERCE[spec.type],
                         to_canonical, to_remote, line, source=preferred_system(spec.sync),
                         only_source=spec.sync.startswith("always_"),
                         ranges=compile_ranges(spec.ranges))


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
    table = spec.to_canonical.get(record.system)
    if isinstance(value, str) and table:
        value = table.get(value.casefold(), value)
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


def map_person(records: Sequence[RemoteRecordLike],
               fields: Sequence[CompiledField]) -> CanonicalProfile:
    """Merge one person's records (of every system) into canonical values."""
    by_system: dict[str, list[RemoteRecordLike]] = {}
    for record in sorted((r for r in records if not r.deleted), key=lambda r: r.modstamp,
                         reverse=True):
        by_system.setdefault(record.system, []).append(record)
    profile = CanonicalProfile()
    for spec in fields:
        source, value = _pick(spec, by_system)
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


def _pick(spec: CompiledField, by_system: Mapping[str, list[RemoteRecordLike]]
          ) -> tuple[str | None, Any]:
    """(system, value) the sync rule makes canonical; (None, None) when no record has it."""
    found: dict[str, tuple[RemoteRecordLike, Any]] = {}
    for system, records in by_system.items():
        record, value = _first_value(spec, records)
        if record is not None:
            found[system] = (record, value)
    preferred = spec.source
    if spec.only_source:
        return (preferred, found[preferred][1]) if preferred in found else (None, None)
    order = [preferred, *sorted(s for s in found if s != preferred)]
    if spec.sync == "two_way" and len(found) > 1:
        filled = [s for s in order if s in found and not blank(found[s][1])]
        if not filled:
            first = next(s for s in order if s in found)
            return first, found[first][1]
        # the latest change wins; a tie goes to the preferred system
        latest = max(filled, key=lambda s: (found[s][0].modstamp, -order.index(s)))
        return latest, found[latest][1]
    # prefer_X_unless_blank, dont_sync (read only), two_way with one side
    for system in order:
        if system in found and not blank(found[system][1]):
            return system, found[system][1]
    for system in order[1:]:
        if system in found:
            return system, found[system][1]
    return (preferred, None) if preferred in found else (None, None)


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
        if spec.only_source and spec.source == system:
            continue  # that system's own value is the canonical one
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
        elif isinstance(value, str) and spec.to_remote.get(system):
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
    table = spec.to_canonical.get(system, {})
    canonical = table.get(value.casefold())
    if canonical is None:
        return None
    if isinstance(held, str) and table.get(held.casefold()) == canonical:
        return held
    return spec.to_remote.get(system, {}).get(canonical)
