"""Data-quality items the pipeline records from what planning and pushing noticed.

- ``untranslatable_value``: a value no translation in fields.yaml knows; it was not written
  and the target kept what it held.
- ``refused_field`` / ``rejected_value``: a system (Salesforce) refused one field of a record
  (a field it does not have or lets us write; or a value it does not accept). The record was written
  without it; the item names the field and the fields.yaml line that maps it.

Keys are ``"{kind}:{system}:{object}:{record_id}:{field}"`` so a problem seen every cycle stays
one item. Details never carry secrets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from connectors.base import FieldError
from connectors.registry import profile_of
from state.deadletters import RefusedPart
from state.flags import Flag
from state.store import StateStore
from syncagent.engine.mapping import CompiledField
from syncagent.pipeline.plan import ANY_VALUE, EVERY_RECORD, Untranslatable

FIELDS_FILE = "fields.yaml"
# Codes that mean "this field does not exist or we may not write it", not "this value": they
# hold for every record of the object, so they are one item per field.
# The item kinds planning reads back as refusals (see `refusals`).
REFUSAL_KINDS = ("refused_field", "rejected_value")
REFUSED_CODES = frozenset({"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE"})
# system, object, record id, error, value sent, person id
Dropped = tuple[str, str, str | None, FieldError, Any, int | None]


def untranslatable_flags(notes: Iterable[Untranslatable], mappings_dir: str) -> list[Flag]:
    flags = []
    for note in notes:
        miss = note.miss
        record = note.record_id or f"person-{note.person_id}"
        flags.append(Flag("untranslatable_value",
                          f"untranslatable_value:{miss.system}:{miss.object}:{record}:"
                          f"{miss.remote_field}",
                          {"system": miss.system, "object": miss.object,
                           "record_id": note.record_id, "person_id": note.person_id,
                           "field": miss.remote_field, "canonical_field": miss.field,
                           "value": str(miss.value)[:200],
                           "reason": f"no translation (or range) of this value for "
                                     f"{miss.system}; the field was left unchanged",
                           "mapping": _mapping_file(mappings_dir), "line": miss.line}))
    return flags


def dropped_field_flags(dropped: Iterable[Dropped], fields: Sequence[CompiledField],
                        mappings_dir: str) -> list[Flag]:
    flags = []
    for system, object_name, record_id, error, value, _person in dropped:
        refused = error.code in REFUSED_CODES
        kind = "refused_field" if refused else "rejected_value"
        scope = EVERY_RECORD if refused else (record_id or "new")
        detail: dict[str, Any] = {
            "system": system, "object": object_name, "record_id": record_id,
            "field": error.field, "code": error.code, "reason": error.message[:300],
            "scope": "every record" if refused else "this record and value"}
        if not refused:
            detail["value"] = None if value is None else str(value)[:200]
        detail.update(_where_mapped(system, object_name, error.field, fields, mappings_dir))
        flags.append(Flag(kind, f"{kind}:{system}:{object_name}:{scope}:{error.field}", detail))
    return flags


def refusals(items: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """What planning must not send again: a refused field anywhere on its object, a rejected
    value on its record (another value is tried). Read from open data-quality items, so fixing
    the mapping (a new field name) or resolving the item lifts it."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for item in items:
        if item.get("kind") not in REFUSAL_KINDS:
            continue
        d = item.get("detail") or {}
        field = str(d.get("field") or "").casefold()
        if not field or not d.get("system") or not d.get("object"):
            continue
        value: Any = ANY_VALUE
        scope = EVERY_RECORD
        if item["kind"] == "rejected_value":
            scope, value = str(d.get("record_id") or ""), d.get("value")
        out.setdefault((d["system"], d["object"], scope), {})[field] = value
    return out


def record(store: StateStore, flags: Sequence[Flag]) -> int:
    return store.flags.many(flags)


def dead_letters(dropped: Iterable[Dropped]) -> list[RefusedPart]:
    """One dead letter per record for the fields left out of it, so the `errors` ledger counts
    it, `errors --retry` re-plans the record (after the mapping is fixed) and `--discard`
    removes it: a refused field is never dropped silently."""
    by_record: dict[tuple[str, str, str], list[tuple[FieldError, Any, int | None]]] = {}
    for system, object_name, record_id, error, value, person in dropped:
        if record_id is not None:
            by_record.setdefault((system, object_name, record_id), []).append(
                (error, value, person))
    parts = []
    for (system, object_name, record_id), errors in by_record.items():
        first = errors[0][0]
        names = ", ".join(dict.fromkeys(e.field for e, _v, _p in errors))
        parts.append(RefusedPart(system, object_name, record_id, errors[0][2],
                                 {e.field: v for e, v, _p in errors}, first.code,
                                 f"{first.message} (fields: {names})"))
    return parts


def _where_mapped(system: str, object_name: str, field: str,
                  fields: Sequence[CompiledField], mappings_dir: str) -> dict[str, object]:
    """The fields.yaml line that maps ``field``, or which agent output it is."""
    wanted = field.casefold()   # Salesforce field names are case-insensitive
    for spec in fields:
        name = spec.remote_name(system, object_name)
        if name is not None and name.casefold() == wanted:
            return {"mapping": _mapping_file(mappings_dir), "line": spec.line,
                    "canonical_field": spec.name}
    profile = profile_of(system)
    for part, name in (profile.outputs if profile is not None else {}).items():
        if name.casefold() == wanted:
            return {"output": part, "fix": "the agent's own output field: check that it "
                                           "exists and the integration user may edit it"}
    return {}


def _mapping_file(mappings_dir: str) -> str:
    return str(Path(mappings_dir) / FIELDS_FILE)
