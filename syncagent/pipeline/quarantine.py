"""Poison values: what cannot be stored or used is cleaned, reported once, and never fatal.

A value is poison when no database can hold it (NUL, a lone surrogate, NaN, a text beyond any
field's size) or the rules cannot use it (a number beyond any field's precision). The record is
kept with that value cleaned or blank, and each bad value becomes one data-quality item
(`poison_value`), keyed by system, object, record and field so the same value is listed once
however often it is read. Details name the record and field and the reason, never the value.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import structlog

from connectors.base import ActivityRecord, RemoteRecord
from state.sanitise import clean_fields
from state.store import MirrorRow, StateStore
from syncagent.engine.mapping import (
    CanonicalProfile,
    CompiledField,
    Problem,
    RemoteRecordLike,
    map_person,
    record_problems,
)

log = structlog.get_logger(__name__)

KIND = "poison_value"
MAX_KEY = 320  # the data-quality key column's size


@dataclass(frozen=True)
class Poison:
    system: str
    object: str
    record_id: str
    field: str
    reason: str

    @property
    def key(self) -> str:
        key = f"{KIND}:{self.system}:{self.object}:{self.record_id}:{self.field}"
        if len(key) <= MAX_KEY:
            return key
        digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()
        return key[:MAX_KEY - 65] + ":" + digest

    def detail(self) -> dict[str, str]:
        return {"system": self.system, "object": self.object, "record_id": self.record_id,
                "field": self.field[:200], "reason": self.reason}


def clean_record(record: RemoteRecord, poison: list[Poison]) -> RemoteRecord:
    """The record with storable fields; what was changed is appended to ``poison``."""
    fields, problems = clean_fields(record.fields)
    if not problems:
        return record
    poison.extend(Poison(record.system, record.object, record.id, name, reason)
                  for name, reason in problems)
    return dataclasses.replace(record, fields=fields)


def clean_activity(activity: ActivityRecord, poison: list[Poison]) -> ActivityRecord:
    details, problems = clean_fields(activity.details)
    if not problems:
        return activity
    poison.extend(Poison(activity.system, f"activity:{activity.kind}", activity.id, name,
                         reason) for name, reason in problems)
    return dataclasses.replace(activity, details=details)


def unusable_values(records: Iterable[RemoteRecordLike], record_ids: Sequence[str],
                    fields: Sequence[CompiledField]) -> list[Poison]:
    """Mapped values the rules read as blank because they cannot be used (evaluation)."""
    return [Poison(record.system, record.object, rid, name, reason)
            for record, rid in zip(records, record_ids, strict=True)
            for name, reason in record_problems(record, fields)]


def read_values(records: Sequence[RemoteRecordLike], rows: Sequence[MirrorRow],
                fields: Sequence[CompiledField]) -> tuple[CanonicalProfile, list[Poison]]:
    """map_person's profile of ``records`` (``rows`` as the mapping reads them), and what
    `unusable_values` finds in them, in one pass over their values (each looked up once)."""
    problems: list[Problem] = []
    profile = map_person(records, fields, problems)
    return profile, [Poison(records[place].system, records[place].object,
                            rows[place].remote_id, name, reason)
                     for place, name, reason in problems]


def flag_poison(store: StateStore, poison: Iterable[Poison]) -> None:
    """One data-quality item per poison value (the key makes a repeat the same item)."""
    seen: set[str] = set()
    for item in poison:
        if item.key in seen:
            continue
        seen.add(item.key)
        log.warning("poison value quarantined", **item.detail())
        store.flags.flag(KIND, item.key, item.detail())
