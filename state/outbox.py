"""The outbox and its dead letters: claiming, completing, releasing and the admin's ledger.

Every function takes an open Session; `StateStore` opens them (and keeps its old method names
as thin delegates). The rules kept here:
- a claimed row always ends as done, pending (retry with backoff) or dead: push completes it,
  or releases it when the push step itself failed; a claim that outlives its holder (a killed
  process) expires and the row is claimed again like any due row;
- a dead letter is never re-sent as it was: `take_for_replan` removes it and marks its person
  for re-evaluation, so the next cycle plans the write afresh from current rules;
- a discarded dead letter stays (status `discarded`) so the same rejected values are not
  planned and rejected again every cycle; changed values re-arm it, as for a dead one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, or_, select, update
from sqlalchemy.orm import Session

from state import models as m
from state.common import chunks, rowcount, table_of

DEAD = "dead"
DISCARDED = "discarded"
IN_FLIGHT = "in_flight"


@dataclass(frozen=True)
class OutboxItem:
    """A claimed outbox row, handed to push."""

    id: int
    system: str
    object: str
    operation: str
    remote_id: str | None
    person_id: int | None
    fields: dict[str, Any]
    idempotency_key: str
    attempts: int


@dataclass(frozen=True)
class OutboxResult:
    """What became of one claimed row: ok, retryable (try later) or rejected (dead letter)."""

    id: int
    status: str  # ok | retryable | rejected
    result_id: str | None = None
    code: str | None = None
    message: str | None = None
    retry_at: datetime | None = None


def _due(now: datetime) -> Any:
    t = table_of(m.OutboxRow)
    return or_(and_(t.c.status == "pending", t.c.next_attempt_at <= now),
               and_(t.c.status == IN_FLIGHT, t.c.claimed_until < now))


def claim(session: Session, holder: str, limit: int, *, where: dict[str, str | None],
          claim_seconds: float, now: datetime) -> list[OutboxItem]:
    """Claim up to `limit` due rows (expired claims included) for `holder`."""
    t = table_of(m.OutboxRow)
    filters = [_due(now)] + [t.c[column] == value for column, value in where.items()
                             if value is not None]
    candidates = (select(t.c.id).where(*filters).order_by(t.c.id).limit(limit)
                  .with_for_update(skip_locked=True))
    stmt = (update(t).where(t.c.id.in_(candidates.scalar_subquery()))
            .values(status=IN_FLIGHT, claimed_by=holder,
                    claimed_until=now + timedelta(seconds=claim_seconds),
                    attempts=t.c.attempts + 1, updated_at=now)
            .returning(t.c.id, t.c.system, t.c.object, t.c.operation, t.c.remote_id,
                       t.c.person_id, t.c.fields, t.c.idempotency_key, t.c.attempts))
    items = [OutboxItem(*row) for row in session.execute(stmt).all()]
    return sorted(items, key=lambda item: item.id)


def complete(session: Session, results: Sequence[OutboxResult], *, max_attempts: int,
             now: datetime) -> None:
    """ok -> done; retryable -> pending with backoff (dead after `max_attempts`);
    rejected -> dead letter with the API's code and message."""
    table = table_of(m.OutboxRow)
    columns = ("status", "result_id", "error_code", "last_error", "next_attempt_at")
    # Only rows still in flight: a batch settled after a failure never undoes a recorded one.
    stmt = (update(table).where(table.c.id == bindparam("row_id"), table.c.status == IN_FLIGHT)
            .values(claimed_by=None, claimed_until=None, updated_at=now,
                    **{name: bindparam(f"new_{name}") for name in columns}))
    attempts = _attempts(session, [r.id for r in results])
    rows = [{"row_id": r.id, **{f"new_{k}": v for k, v in completion_values(
        r, attempts.get(r.id, 1), max_attempts, now).items()}} for r in results]
    for chunk in chunks(rows):
        session.connection().execute(stmt, list(chunk))


def release(session: Session, ids: Sequence[int], *, now: datetime,
            code: str | None = None, message: str | None = None) -> int:
    """Claimed rows whose push never ran to the end go back to the queue at once, the
    attempt not counted (a stop for budget or credentials is not the record's fault)."""
    t = table_of(m.OutboxRow)
    touched = 0
    for chunk in chunks(list(ids), 900):
        result = session.execute(
            update(t).where(t.c.id.in_(chunk), t.c.status == IN_FLIGHT)
            .values(status="pending", claimed_by=None, claimed_until=None,
                    attempts=case((t.c.attempts > 0, t.c.attempts - 1), else_=0),
                    next_attempt_at=now, updated_at=now,
                    error_code=code, last_error=message))
        touched += rowcount(result)
    return touched


def claim_holders(session: Session) -> dict[str, list[int]]:
    """The rows in flight, by the holder that claimed them."""
    t = table_of(m.OutboxRow)
    held: dict[str, list[int]] = {}
    for row_id, holder in session.execute(
            select(t.c.id, t.c.claimed_by).where(t.c.status == IN_FLIGHT)):
        held.setdefault(holder or "", []).append(int(row_id))
    return held


def _attempts(session: Session, ids: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for chunk in chunks(ids, 900):
        out.update(dict(session.execute(select(m.OutboxRow.id, m.OutboxRow.attempts)
                                        .where(m.OutboxRow.id.in_(chunk))).all()))
    return out


def completion_values(result: OutboxResult, attempts: int, max_attempts: int,
                      now: datetime) -> dict[str, Any]:
    """The outbox columns a push result sets (the same keys for every outcome)."""
    if result.status == "ok":
        return {"status": "done", "result_id": result.result_id, "error_code": None,
                "last_error": None, "next_attempt_at": now}
    if result.status == "retryable" and attempts < max_attempts:
        backoff = min(3600.0, 5.0 * 2 ** (attempts - 1))
        return {"status": "pending", "result_id": None, "error_code": result.code,
                "last_error": result.message,
                "next_attempt_at": result.retry_at or now + timedelta(seconds=backoff)}
    code = result.code or ("RETRIES_EXHAUSTED" if result.status == "retryable" else "REJECTED")
    return {"status": DEAD, "result_id": None, "error_code": code,
            "last_error": result.message, "next_attempt_at": now}


def groups(session: Session, now: datetime) -> list[tuple[str, str, str]]:
    """The (system, object, operation) groups that have rows due now."""
    t = m.OutboxRow
    rows = session.execute(select(t.system, t.object, t.operation).where(_due(now)).distinct())
    return [(s, o, op) for s, o, op in rows]


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(m.OutboxRow.status, func.count())
                           .group_by(m.OutboxRow.status))
    return {status: count for status, count in rows}


def claims(session: Session, now: datetime) -> dict[str, int]:
    """Rows in flight: held by a live claim, or with a claim past its window (re-claimable)."""
    t = m.OutboxRow
    expired = func.sum(case((t.claimed_until < now, 1), else_=0))
    total, stale = session.execute(select(func.count(), expired)
                                   .where(t.status == IN_FLIGHT)).one()
    return {"in_flight": int(total or 0), "claims_expired": int(stale or 0)}


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
    for chunk in chunks(ids, 900):
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


def keys_done(session: Session, keys: Iterable[str]) -> dict[str, str | None]:
    """For keys whose write already succeeded: key -> the remote id it produced."""
    t = m.OutboxRow
    out: dict[str, str | None] = {}
    for chunk in chunks(list(keys), 900):
        out.update(dict(session.execute(select(t.idempotency_key, t.result_id).where(
            t.idempotency_key.in_(chunk), t.status == "done")).all()))
    return out
