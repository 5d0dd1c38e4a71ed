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

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, Protocol

from syncagent.engine.normalise import COERCE, blank
from syncagent.engine.ranges import RangeTable, compile_ranges
from syncagent.engine.reading import UNREAD, FieldPlan, Problem, Reader, plan_of, record_problems
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


# (record, value) per system: the newest record holding the field, and its value (None: blank)
Found = dict[str, tuple[RemoteRecordLike, Any]]


def map_person(records: Sequence[RemoteRecordLike], fields: Sequence[CompiledField],
               problems: list[Problem] | None = None) -> CanonicalProfile:
    """Merge one person's records (of every system) into canonical values.

    ``problems``: when given, what record_problems finds in each record (deleted ones too)
    is appended to it, in the records' order, found in the pass that reads the values (a
    value is looked up once for both)."""
    plan = plan_of(fields)
    if len(records) == 1 and not records[0].deleted:
        return _one_record(records[0], plan, problems)
    if len(records) == 2 and records[0].system != records[1].system \
            and not records[0].deleted and not records[1].deleted:
        return _two_systems(records[0], records[1], fields, plan, problems)
    return _merged(records, fields, plan, problems)


def _two_systems(first: RemoteRecordLike, second: RemoteRecordLike,
                 fields: Sequence[CompiledField], plan: FieldPlan,
                 problems: list[Problem] | None) -> CanonicalProfile:
    """map_person of a person with one live record in each of two systems (most persons
    held by both): each system's values are its one record's, so the merge needs no
    per-field dict of what each system holds (`_found_values`): each record is read into a
    list by field, and a field both hold is picked from the two (`_pick_two`)."""
    found: list[Problem] | None = [] if problems is not None else None
    size = len(fields)
    # newest first, as the merge reads them (its sort's one comparison, and its error if the
    # stamps do not compare)
    if first.modstamp < second.modstamp:
        b = _by_index(second, plan, size, 1, found)
        a = _by_index(first, plan, size, 0, found)
    else:
        a = _by_index(first, plan, size, 0, found)
        b = _by_index(second, plan, size, 1, found)
    if problems is not None and found:
        problems += sorted(found, key=_PLACE)   # the records' order
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for index, spec in enumerate(fields):
        va, vb = a[index], b[index]
        if va is UNREAD:
            if vb is UNREAD:
                continue
            source, value = second.system, vb
        elif vb is UNREAD:
            source, value = first.system, va
        else:
            picked, value = _pick_two(spec, first, va, second, vb)
            if picked is None:
                continue
            source = picked
        if spec.only_source and source != spec.source:
            continue
        values[spec.name] = value
        sources[spec.name] = source
    return CanonicalProfile(values, sources)


def _by_index(record: RemoteRecordLike, plan: FieldPlan, size: int, place: int,
              problems: list[Problem] | None) -> list[Any]:
    """The record's value of each field by the field's index (UNREAD: not held)."""
    out: list[Any] = [UNREAD] * size
    for reader, value in _held(record, plan, place, problems):
        out[reader.index] = value
    return out


def _held(record: RemoteRecordLike, plan: FieldPlan, place: int,
          problems: list[Problem] | None, own: bool = False) -> Iterator[tuple[Reader, Any]]:
    """Each mapped field the record holds, with the value it reads as (``Reader.read``), in
    the fields' order; its problem noted first (``place``: the record's), when ``problems``
    is given. ``own``: only the fields whose value counts from the record's system (an
    always_<another system> field's is noted, never read)."""
    raws = record.fields
    for reader in plan.readers(record.system, record.object):
        if reader.name in raws:
            raw = raws[reader.name]
            # text of a field not numeric (most values) and None have no problem: no call
            if problems is not None and raw is not None \
                    and (reader.numeric or type(raw) is not str):
                reader.note(problems, place, raw)
            if own and reader.alien:
                continue
            if type(raw) is str:   # (read's memo hit, inline: no call for most values)
                value = reader.memo.get(raw, UNREAD)
                yield reader, reader.read(raw) if value is UNREAD else value
            else:
                yield reader, reader.convert(raw)


def _pick_two(spec: CompiledField, first: RemoteRecordLike, a: Any,
              second: RemoteRecordLike, b: Any) -> tuple[str | None, Any]:
    """`_pick` of a field two systems hold, one record each (``a``: ``first``'s value, ``b``:
    ``second``'s; None: blank), with no dict of them to build."""
    preferred = spec.source
    if spec.only_source:
        if first.system == preferred:
            return preferred, a
        return (preferred, b) if second.system == preferred else (None, None)
    # the order _pick tries the systems in: the preferred first, then the others by name
    if second.system == preferred or (first.system != preferred
                                      and second.system < first.system):
        first, a, second, b = second, b, first, a
    if spec.sync == "two_way":   # the latest change wins; a tie goes to the earlier system
        if a is not None:
            return (second.system, b) if b is not None and second.modstamp > first.modstamp \
                else (first.system, a)
        return (second.system, b) if b is not None else (first.system, a)
    # prefer_X_unless_blank, dont_sync: the first system in that order with a value, else
    # the first other system's blank (the preferred system's when no other holds it: not so
    # here, both hold it)
    if a is not None:
        return first.system, a
    if first.system == preferred or b is not None:
        return second.system, b
    return first.system, a


def _merged(records: Sequence[RemoteRecordLike], fields: Sequence[CompiledField],
            plan: FieldPlan, problems: list[Problem] | None = None) -> CanonicalProfile:
    """Each field's value from the records holding it: the one system's, else `_pick`'s."""
    found_of = _found_values(records, plan, problems)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for index, spec in enumerate(fields):
        found = found_of.get(index)
        if found is None:
            continue
        if len(found) == 1:   # one system holds it (most fields, most persons): its value
            [(source, (_record, value))] = found.items()
            if spec.only_source and source != spec.source:
                continue
        else:
            picked, value = _pick(spec, found)
            if picked is None:
                continue
            source = picked
        values[spec.name] = value
        sources[spec.name] = source
    return CanonicalProfile(values, sources)


def _one_record(record: RemoteRecordLike, plan: FieldPlan,
                problems: list[Problem] | None = None) -> CanonicalProfile:
    """map_person of a person with one live record (many persons): every field it holds is
    held by one system, so each is its value (unless the field is always another system's),
    in the fields' order, as the merge would give."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    system = record.system
    for reader, value in _held(record, plan, 0, problems, own=True):
        values[reader.canonical] = value
        sources[reader.canonical] = system
    return CanonicalProfile(values, sources)


def _found_values(records: Sequence[RemoteRecordLike], plan: FieldPlan,
                  problems: list[Problem] | None = None) -> dict[int, Found]:
    """Per field (by index), per system holding it: the newest of the system's records with
    a value, and that value; else the newest holding it blank, with None. Each record is
    read once, newest first (and its problems found then, when ``problems`` is given)."""
    found_of: dict[int, Found] = {}
    places = [place for place, record in enumerate(records) if not record.deleted]
    places.sort(key=lambda place: records[place].modstamp, reverse=True)
    found_problems: list[Problem] = []
    for place in places:
        record = records[place]
        system = record.system
        noted = found_problems if problems is not None else None
        for reader, value in _held(record, plan, place, noted):
            found = found_of.get(reader.index)
            if found is None:
                found_of[reader.index] = {system: (record, value)}
            elif system not in found or (found[system][1] is None and value is not None):
                found[system] = (record, value)
    if problems is not None:
        found_problems += [(place, name, reason) for place, record in enumerate(records)
                           if record.deleted
                           for name, reason in record_problems(record, plan.fields)]
        found_problems.sort(key=_PLACE)   # stable: a record's own stay in the fields' order
        problems += found_problems
    return found_of


_PLACE = itemgetter(0)


def _pick(spec: CompiledField, found: Found) -> tuple[str | None, Any]:
    """(system, value) the sync rule makes canonical, from what each system holds; (None,
    None) when no record counts. A value found is None when blank (``Reader.read``)."""
    preferred = spec.source
    if spec.only_source:
        return (preferred, found[preferred][1]) if preferred in found else (None, None)
    if spec.sync == "two_way" and len(found) > 1:
        # the latest change wins; a tie goes to the earlier system in this order (the
        # preferred first); no value anywhere: the first system's blank
        order = sorted(s for s in found if s != preferred)
        if preferred in found:
            order.insert(0, preferred)
        latest: str | None = None
        stamp: Any = None   # the modstamp of latest (as the records type it)
        for system in order:
            record, value = found[system]
            if value is not None and (latest is None or record.modstamp > stamp):
                latest, stamp = system, record.modstamp
        if latest is None:
            latest = order[0]
        return latest, found[latest][1]
    # prefer_X_unless_blank, dont_sync (read only), two_way with one side: the preferred
    # system's value, else the first other system's with a value, else any's blank
    mine = found.get(preferred)
    if mine is not None and mine[1] is not None:
        return preferred, mine[1]
    others = sorted(s for s in found if s != preferred)
    for system in others:
        if found[system][1] is not None:
            return system, found[system][1]
    if others:
        return others[0], found[others[0]][1]
    return (preferred, None) if mine is not None else (None, None)


def remote_values(profile: Mapping[str, Any], fields: Sequence[CompiledField], system: str,
                  object_name: str, *, held: Mapping[str, Any] | None = None,
                  misses: list[Miss] | None = None) -> dict[str, Any]:
    """Desired remote field values for one record, honouring each field's sync rule.

    ``held`` (the record's current fields) keeps a spelling the record already has for the
    same canonical value (an alias is not rewritten); untranslatable values are left out and
    appended to ``misses``.
    """
    out: dict[str, Any] = {}
    # dont_sync fields and those whose only source is this system are never written here
    for spec, name, ranges, translates in plan_of(fields).writers(system, object_name):
        if spec.name not in profile:
            continue
        value = profile[spec.name]
        if ranges is not None and not blank(value):
            value = ranges.write(value, (held or {}).get(name))
            if value is None:
                if misses is not None:
                    misses.append(Miss(spec.name, system, object_name, name,
                                       profile[spec.name], spec.line))
                continue
        elif translates and isinstance(value, str):
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
