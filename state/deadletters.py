"""Dead letters: the admin's ledger of writes an API refused, and what can be done with them.

Every function takes an open Session; `OutboxStore` opens them. The rules kept here:
- a dead letter is never re-sent as it was: `take_for_replan` removes it and marks its person
  for re-evaluation, so the next cycle plans the write afresh from current rules;
- a discarded dead letter stays (status `discarded`) so the same rejected values are not
  planned and rejected again every cycle; changed values re-arm it, as for a dead one;
- fields an API refused while the rest of a record was written become one dead letter per
  record (`add_refused`), replaced by a later refusal of the same record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.orm import Session

from state import models as m
from state.common import IN_LIST, chunks, rowcount, table_of, upsert

DEAD = "dead"
DISCARDED = "discarded"
MESSAGE_CHARS = 2000


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


def add_refused(session: Session, parts: Sequence[RefusedPart], now: datetime) -> int:
    """Dead letters for refused fields (one per record; a later refusal replaces it)."""
    rows = [{"system": p.system, "object": p.object, "operation": "update",
             "remote_id": p.remote_id, "person_id": p.person_id, "fields": p.fields,
             "idempotency_key": f"{p.system}:{p.object}:{p.remote_id}:refused",
             "status": DEAD, "attempts": 1, "next_attempt_at": now, "error_code": p.code,
             "last_error": p.message[:MESSAGE_CHARS], "created_at": now, "updated_at": now}
            for p in parts]
    upsert(session, table_of(m.OutboxRow), rows, ["idempotency_key"],
           ["fields", "status", "error_code", "last_error", "person_id", "updated_at"])
    return len(rows)


def dead_total(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(m.OutboxRow)
                              .where(m.OutboxRow.status == DEAD)) or 0)


def dead_letters(session: Session, limit: int, code: str | None = None) -> list[dict[str, Any]]:
    t = m.OutboxRow
    query = select(t).where(t.status == DEAD)
    if code is not None:
        query = query.where(t.error_code == code)
    return [{"id": r.id, "system": r.system, "object": r.object, "operation": r.operation,
             "remote_id": r.remote_id, "person_id": r.person_id, "fields": r.fields,
             "code": r.error_code, "message": r.last_error, "attempts": r.attempts,
             "field": error_field(r.error_code, r.last_error), "updated_at": r.updated_at}
            for r in session.scalars(query.order_by(t.id).limit(limit))]


def dead_letter_groups(session: Session) -> list[dict[str, Any]]:
    """Dead letters grouped by system, code and field: count, first and last seen, and one
    example record with its message. Counts are true totals (SQL aggregates, no cap)."""
    t = m.OutboxRow
    rows = session.execute(
        select(t.system, t.error_code, t.last_error, func.count(), func.min(t.updated_at),
               func.max(t.updated_at), func.min(t.id))
        .where(t.status == DEAD).group_by(t.system, t.error_code, t.last_error))
    grouped: dict[tuple[str, str, str], dict[str, Any]] = {}
    for system, code, message, count, first, last, example_id in rows:
        key = (system, code or "REJECTED", error_field(code, message))
        group = grouped.setdefault(key, {
            "system": key[0], "code": key[1], "field": key[2], "count": 0, "first_seen": first,
            "last_seen": last, "example_id": example_id, "example_message": message})
        group["count"] += count
        group["first_seen"] = min(group["first_seen"], first)
        group["last_seen"] = max(group["last_seen"], last)
        if example_id < group["example_id"]:
            group["example_id"], group["example_message"] = example_id, message
    examples = _examples(session, [g["example_id"] for g in grouped.values()])
    for group in grouped.values():
        group["example_record"] = examples.get(group["example_id"], "")
    return sorted(grouped.values(), key=lambda g: (-g["count"], g["system"], g["code"]))


def _examples(session: Session, ids: list[int]) -> dict[int, str]:
    t = m.OutboxRow
    out: dict[int, str] = {}
    for chunk in chunks(ids, IN_LIST):
        for rid, obj, remote_id in session.execute(
                select(t.id, t.object, t.remote_id).where(t.id.in_(chunk))):
            out[rid] = f"{obj} {remote_id or '(new)'}"
    return out


_FIELD_PATTERNS = (
    re.compile(r"\(fields: ([^)]*)\)"),        # Salesforce results' fields[], as push notes it
    re.compile(r"No such column '([^']+)'"),   # Salesforce INVALID_FIELD wording
    re.compile(r'"name":\s*"([^"]+)"'),        # HubSpot VALIDATION_ERROR details
    re.compile(r'Property "([^"]+)"'),         # HubSpot PROPERTY_DOESNT_EXIST wording
)


def error_field(code: str | None, message: str | None) -> str:
    """The field(s) an API error names, from its message ('-' when it names none)."""
    text = message or ""
    for pattern in _FIELD_PATTERNS:
        found = sorted(set(pattern.findall(text)))
        if found:
            return ", ".join(found)
    return "-"


def _selected(ids: Iterable[int] | None, code: str | None) -> Any:
    t = table_of(m.OutboxRow)
    where = [t.c.status == DEAD]
    if ids is not None:
        where.append(t.c.id.in_(list(ids)))
    if code is not None:
        where.append(t.c.error_code == code)
    return and_(*where)


def discard(session: Session, ids: Iterable[int] | None, code: str | None,
            now: datetime) -> int:
    """Dead letters leave the ledger. Kept as `discarded` so the same values are not planned
    and rejected again; a write with other values re-arms the row."""
    t = table_of(m.OutboxRow)
    result = session.execute(update(t).where(_selected(ids, code))
                             .values(status=DISCARDED, updated_at=now))
    return rowcount(result)


def take_for_replan(session: Session, ids: Iterable[int] | None,
                    code: str | None) -> tuple[list[int], int]:
    """Remove dead letters that belong to a person and return those persons (to re-evaluate
    and re-plan from current rules); also how many were left because no person owns them."""
    t = table_of(m.OutboxRow)
    where = _selected(ids, code)
    persons = [pid for (pid,) in session.execute(
        select(t.c.person_id).where(where, t.c.person_id.is_not(None)).distinct())]
    orphans = int(session.scalar(select(func.count()).select_from(t)
                                 .where(where, t.c.person_id.is_(None))) or 0)
    session.execute(delete(t).where(where, t.c.person_id.is_not(None)))
    return persons, orphans

