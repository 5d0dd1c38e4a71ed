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
from operator import attrgetter
from typing import Any, Protocol

from syncagent.engine.normalise import COERCE, MAX_ABS_NUMBER, blank, value_problem
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


_UNREAD = object()
_MEMO_SIZE = 4_096   # texts remembered per field and object


@dataclass(frozen=True, slots=True)
class _Reader:
    """How one field is read from one (system, object): its remote name, then the ranges,
    coercion and translation a raw value goes through."""

    index: int                              # the field's place in the rule set
    name: str
    canonical: str                          # the canonical field's name
    # always_<another system>: what this system holds never counts (map_person skips it)
    alien: bool
    kind: str
    coerce: Callable[[Any], Any]
    ranges: RangeTable | None
    table: Mapping[str, str] | None         # folded remote value -> canonical (None: none)
    # raw text -> what it reads as: titles, countries, industries, statuses repeat from
    # person to person, and reading is pure (its results are immutable: text, numbers,
    # None). Bounded: emptied when full, so unique values (names, e-mails) cannot grow it.
    memo: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def read(self, raw: Any) -> Any:
        """The canonical value, None for a blank one (what merging takes a blank for)."""
        if type(raw) is not str:
            return self._read(raw)
        memo = self.memo
        value = memo.get(raw, _UNREAD)
        if value is _UNREAD:
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            value = memo[raw] = self._read(raw)
        return value

    def _read(self, raw: Any) -> Any:
        if self.ranges is not None:
            raw = self.ranges.read(raw)
        value = self.coerce(raw)
        if self.table is not None and isinstance(value, str):
            value = self.table.get(value.casefold(), value)
        return None if blank(value) else value


# A field written to one (system, object): the field, its remote name, the system's ranges
# (None: none) and whether it translates to the system's spellings.
_Writer = tuple[CompiledField, str, RangeTable | None, bool]


class _FieldPlan:
    """A rule set's fields, looked up once per (system, object): which fields a record of it
    holds and under what names, for reading (``map_person``) and for writing
    (``remote_values``). A cycle maps and plans every person with the same few objects, so
    this is what their per-field name look-ups come down to."""

    def __init__(self, fields: Sequence[CompiledField]) -> None:
        self.fields = fields
        self._readers: dict[tuple[str, str], tuple[_Reader, ...]] = {}
        self._writers: dict[tuple[str, str], tuple[_Writer, ...]] = {}
        self._checks: dict[tuple[str, str], tuple[tuple[str, str, bool], ...]] = {}

    def readers(self, system: str, object_name: str) -> tuple[_Reader, ...]:
        key = (system, object_name)
        found = self._readers.get(key)
        if found is None:
            found = self._readers[key] = tuple(
                _Reader(i, name, spec.name, spec.only_source and spec.source != system,
                        spec.type, spec.coerce, spec.ranges.get(system),
                        spec.to_canonical.get(system) or None)
                for i, spec in enumerate(self.fields)
                if (name := spec.remote_name(system, object_name)) is not None)
        return found

    def checks(self, system: str, object_name: str) -> tuple[tuple[str, str, bool], ...]:
        """What record_problems asks of each field read from this object: (remote name,
        type, whether the type is numeric), as plain tuples (they unpack faster than a
        reader's attributes are read)."""
        key = (system, object_name)
        found = self._checks.get(key)
        if found is None:
            found = self._checks[key] = tuple(
                (r.name, r.kind, r.kind in _NUMERIC_KINDS)
                for r in self.readers(system, object_name))
        return found

    def writers(self, system: str, object_name: str) -> tuple[_Writer, ...]:
        """How the fields written to this object are written: not ``dont_sync``, and not
        those whose only source is this very system."""
        key = (system, object_name)
        found = self._writers.get(key)
        if found is None:
            found = self._writers[key] = tuple(
                (spec, name, spec.ranges.get(system), bool(spec.to_remote.get(system)))
                for spec in self.fields
                if spec.sync != "dont_sync" and not (spec.only_source and spec.source == system)
                and (name := spec.remote_name(system, object_name)) is not None)
        return found


_PLANS: dict[int, _FieldPlan] = {}
_MAX_PLANS = 8   # rule sets in use at once (a reload makes a new one)


def _plan_of(fields: Sequence[CompiledField]) -> _FieldPlan:
    """The plan of this very rule set (by identity: the plan holds the fields, so the id
    cannot be reused while it is cached)."""
    plan = _PLANS.get(id(fields))
    if plan is None or plan.fields is not fields:
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        plan = _PLANS[id(fields)] = _FieldPlan(fields)
    return plan


def record_problems(record: RemoteRecordLike, fields: Sequence[CompiledField]
                    ) -> list[tuple[str, str]]:
    """(remote field, reason) for each mapped value of this record that reads as blank
    because it cannot be used (NaN, a number beyond any field's precision)."""
    problems: list[tuple[str, str]] = []
    values = record.fields
    for name, kind, numeric in _plan_of(fields).checks(record.system, record.object):
        raw = values.get(name)
        # value_problem finds nothing in text of a field not numeric (most values: tested
        # first), in None (or a field the record lacks), in a number any field can hold
        # (most numbers: this skips its parsing), nor in other kinds of field but a float
        # that is not finite
        if type(raw) is str:
            if not numeric:
                continue
        elif (raw is None or (type(raw) in _NUMBERS and abs(raw) <= MAX_ABS_NUMBER)
              or (not numeric and not isinstance(raw, float))):
            continue
        reason = value_problem(kind, raw)
        if reason is not None:
            problems.append((name, reason))
    return problems


_NUMERIC_KINDS = frozenset({"integer", "number"})
_NUMBERS = frozenset({int, float})   # exactly: not bool, nor a subclass value_problem may judge
# (record, value) per system: the newest record holding the field, and its value (None: blank)
Found = dict[str, tuple[RemoteRecordLike, Any]]
_MODSTAMP = attrgetter("modstamp")


def map_person(records: Sequence[RemoteRecordLike],
               fields: Sequence[CompiledField]) -> CanonicalProfile:
    """Merge one person's records (of every system) into canonical values."""
    plan = _plan_of(fields)
    if len(records) == 1 and not records[0].deleted:
        return _one_record(records[0], plan)
    return _merged(records, fields, plan)


def _merged(records: Sequence[RemoteRecordLike], fields: Sequence[CompiledField],
            plan: _FieldPlan) -> CanonicalProfile:
    """Each field's value from the records holding it: the one system's, else `_pick`'s."""
    found_of = _found_values(records, plan)
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


def _one_record(record: RemoteRecordLike, plan: _FieldPlan) -> CanonicalProfile:
    """map_person of a person with one live record (many persons): every field it holds is
    held by one system, so each is its value (unless the field is always another system's),
    in the fields' order, as the merge would give."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    raws, system = record.fields, record.system
    for reader in plan.readers(system, record.object):
        if reader.alien or reader.name not in raws:
            continue
        values[reader.canonical] = reader.read(raws[reader.name])
        sources[reader.canonical] = system
    return CanonicalProfile(values, sources)


def _found_values(records: Sequence[RemoteRecordLike], plan: _FieldPlan
                  ) -> dict[int, Found]:
    """Per field (by index), per system holding it: the newest of the system's records with
    a value, and that value; else the newest holding it blank, with None. Each record is
    read once, newest first."""
    found_of: dict[int, Found] = {}
    for record in sorted((r for r in records if not r.deleted), key=_MODSTAMP, reverse=True):
        values, system = record.fields, record.system
        for reader in plan.readers(system, record.object):
            if reader.name not in values:
                continue
            value = reader.read(values[reader.name])
            found = found_of.get(reader.index)
            if found is None:
                found_of[reader.index] = {system: (record, value)}
            elif system not in found or (found[system][1] is None and value is not None):
                found[system] = (record, value)
    return found_of


def _pick(spec: CompiledField, found: Found) -> tuple[str | None, Any]:
    """(system, value) the sync rule makes canonical, from what each system holds; (None,
    None) when no record counts. A value found is None when blank (``_Reader.read``)."""
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
    for spec, name, ranges, translates in _plan_of(fields).writers(system, object_name):
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
