"""Data-quality items in bulk: many flags in one transaction.

A cycle can find hundreds of values no translation knows, or a Salesforce field refused on
every record; one transaction per item (``StateStore.flag``) would cost a commit each. A key
already present keeps its row and gets the latest detail, so the same problem stays one item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from state import models as m
from state.store import StateStore

CHUNK = 500


@dataclass(frozen=True)
class Flag:
    """One data-quality item: ``key`` is stable, so the same problem is one row."""

    kind: str
    key: str
    detail: dict[str, Any]


def flag_many(store: StateStore, flags: Sequence[Flag], now: datetime | None = None) -> int:
    """Record every flag (upsert by key) in one transaction; returns how many were given."""
    unique = {f.key: f for f in flags}   # the last detail wins within one call
    if not unique:
        return 0
    when = now or datetime.now(UTC)
    rows = [{"kind": f.kind, "key": f.key, "detail": f.detail, "created_at": when,
             "resolved": False} for f in unique.values()]
    table = cast(Table, m.DataQualityItem.__table__)
    insert = postgresql.insert(table) if store.dialect == "postgresql" else sqlite.insert(table)
    stmt = insert.on_conflict_do_update(index_elements=["key"],
                                        set_={"detail": insert.excluded["detail"]})
    with store.transaction() as session:
        for start in range(0, len(rows), CHUNK):
            session.execute(stmt, rows[start:start + CHUNK])
    return len(rows)


@dataclass(frozen=True)
class RefusedPart:
    """The fields of one record an API refused while the rest of the record was written."""

    system: str
    object: str
    remote_id: str
    person_id: int | None
    fields: dict[str, Any]
    code: str
    message: str


def refused_dead_letters(store: StateStore, parts: Sequence[RefusedPart],
                         now: datetime | None = None) -> int:
    """Dead letters for refused fields (one per record; a later refusal replaces it)."""
    if not parts:
        return 0
    when = now or datetime.now(UTC)
    rows = [{"system": p.system, "object": p.object, "operation": "update",
             "remote_id": p.remote_id, "person_id": p.person_id, "fields": p.fields,
             "idempotency_key": f"{p.system}:{p.object}:{p.remote_id}:refused",
             "status": "dead", "attempts": 1, "next_attempt_at": when, "error_code": p.code,
             "last_error": p.message[:2000], "created_at": when, "updated_at": when}
            for p in parts]
    table = cast(Table, m.OutboxRow.__table__)
    insert = postgresql.insert(table) if store.dialect == "postgresql" else sqlite.insert(table)
    stmt = insert.on_conflict_do_update(
        index_elements=["idempotency_key"],
        set_={name: insert.excluded[name] for name in (
            "fields", "status", "error_code", "last_error", "person_id", "updated_at")})
    with store.transaction() as session:
        for start in range(0, len(rows), CHUNK):
            session.execute(stmt, rows[start:start + CHUNK])
    return len(rows)
