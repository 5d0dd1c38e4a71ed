"""The engine's and pipeline's plain paths, as they were before the rescore was made fast:
mapping one field at a time (each remote name looked up per record), ``same_value`` without
its text shortcut (and planned changes without it), and ``_jsonable`` with a call per value.
The equivalence tests run a cycle with these patched in and compare what it stores with the
fast paths' results, so a speed-up can never silently change a decision or a planned write.
Kept as written then: do not optimise them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields as dataclass_fields
from dataclasses import is_dataclass
from datetime import date, datetime
from typing import Any

from connectors.profile import SystemProfile
from state.store import MirrorRow
from syncagent.engine.mapping import (
    CanonicalProfile,
    CompiledField,
    Miss,
    RemoteRecordLike,
    _translate,
)
from syncagent.engine.normalise import blank, value_problem
from syncagent.pipeline import plan
from syncagent.pipeline.quarantine import Poison
from syncagent.pipeline.records import parse_when, wire_value


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


def read_values(records: Sequence[RemoteRecordLike], rows: Sequence[MirrorRow],
                fields: Sequence[CompiledField]) -> tuple[CanonicalProfile, list[Poison]]:
    """quarantine.read_values as two passes: the values (map_person), then each record's
    problems (record_problems), as the pipeline found them before the one pass."""
    return map_person(records, fields), [
        Poison(record.system, record.object, row.remote_id, name, reason)
        for record, row in zip(records, rows, strict=True)
        for name, reason in record_problems(record, fields)]


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


def same_value(desired: Any, current: Any) -> bool:
    """Equal as the remote system would store them (HubSpot returns every value as text)."""
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


def changes(wanted: Mapping[str, Any], record: MirrorRow, written: Mapping[str, Any],
            profile: SystemProfile) -> dict[str, Any]:
    """pipeline/plan.py's ``_changes`` as a comprehension: ``_held``, ``same_value`` and
    ``wire_value`` called for every value."""
    return {name: wire_value(record.system, value) for name, value in wanted.items()
            if not same_value(value, plan._held(name, record, written))
            and not plan._changed_by_a_person(name, record, written, profile)}


_PLAIN = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}   # a dataclass -> its field names, once


def _jsonable(value: Any) -> Any:
    """JSON-ready copy of a value, dataclasses included. Not dataclasses.asdict: that
    deep-copies every leaf, and the pipeline stores a decision per person per cycle (plain
    values return first, and each dataclass's field names are looked up once: this runs for
    every value of every decision)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    names = _FIELD_NAMES.get(kind)
    if names is not None:
        return {name: _jsonable(getattr(value, name)) for name in names}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        _FIELD_NAMES[kind] = tuple(f.name for f in dataclass_fields(value))
        return _jsonable(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
