"""The outbox: planned writes, claimed by push, completed, released or sent to dead letters.

The session-level functions here take an open Session; `OutboxStore` opens one per call, and
`StateStore.commit_evaluation` calls `enqueue` inside the transaction that stores the
decisions the rows were planned from. The rules kept here:
- side effects (create, upsert, list changes) are enqueued once per idempotency key, ever; an
  update replaces a pending one, re-arms a done one, and re-arms a dead or discarded one only
  if its values changed (a rejected write is not retried forever with the same values); one
  in flight is left to land, and its person is marked dirty to be planned again;
- claims use `FOR UPDATE SKIP LOCKED` on Postgres, so two agents never get the same row
  (SQLite has one writer at a time);
- a claimed row always ends as done, pending (retry with backoff) or dead: push completes it,
  or releases it when the push step itself failed; a claim that outlives its holder (a killed
  process) expires and the row is claimed again like any due row.
The dead-letter ledger is in `state/deadletters.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from state import common, deadletters
from state import models as m
from state.common import (
    IN_LIST,
    Sessions,
    chunks,
    execute_rows,
    insert_ignore,
    rowcount,
    table_of,
    upsert,
    utcnow,
)
from state.db import driver_rows, listed, one_of
from state.deadletters import DEAD, DISCARDED, RefusedPart
from state.doorbell import Doorbell
from state.persons import set_dirty

IN_FLIGHT = "in_flight"


@dataclass(frozen=True)
class NewOutboxRow:
    """A write the plan wants made. Same key while pending -> the newer fields replace it."""

    system: str
    object: str
    operation: str  # update | create | upsert | list_add | list_remove
    fields: dict[str, Any]
    idempotency_key: str
    remote_id: str | None = None
    person_id: int | None = None
    # The remote modification time of the newest change the write carries (see plan.py);
    # a done write's latency is measured from it.
    changed_at: datetime | None = None


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
    # the code of the last failure or release (None: nothing went wrong with it before)
    error_code: str | None = None

    @property
    def never_sent(self) -> bool:
        """First claim, never released nor failed: no earlier attempt can have landed (a
        release, even of a killed process's claim, leaves its code; an expired claim that is
        taken again counts a second attempt)."""
        return self.attempts <= 1 and self.error_code is None


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


def enqueue(session: Session, rows: Sequence[Any], now: datetime) -> list[int]:
    """Add planned writes (NewOutboxRow or its tuple, bound by position: common.as_tuples;
    see the module's rules for a repeated key), the columns all new rows share bound once.
    Returns the persons of updates that found their row in flight (``in_flight_persons``):
    the caller must mark them dirty after it marks them evaluated."""
    table = table_of(m.OutboxRow)
    shared = {"status": "pending", "attempts": 0, "next_attempt_at": now,
              "created_at": now, "updated_at": now}
    rows, fields = common.as_tuples(rows, NewOutboxRow), common.field_names(NewOutboxRow)
    operation, key = map(fields.index, ("operation", "idempotency_key"))
    once = [r for r in rows if r[operation] != "update"]
    updates = [r for r in rows if r[operation] == "update"]
    c = table.c

    def rearm(excluded: Any) -> Any:
        return or_(c.status == "pending", c.status == "done",
                   and_(or_(c.status == DEAD, c.status == DISCARDED),
                        c.fields != excluded.fields))

    insert_ignore(session, table, once, ["idempotency_key"], shared, fields)
    upsert(session, table, updates, ["idempotency_key"],
           ["fields", "remote_id", "status", "attempts", "next_attempt_at", "updated_at",
            "changed_at"], where=rearm, shared=shared, fields=fields)
    return in_flight_persons(session, [row[key] for row in updates])


def in_flight_persons(session: Session, keys: Sequence[str]) -> list[int]:
    """The persons whose update under one of these keys is in flight.

    An update planned while its row is in flight is not taken in: the push that holds the
    row sends the older values and marks it done, so the newer ones would be lost for good
    (a cross id planned once a Lead exists, after a killed cycle left its contact's row
    claimed), and the person, stored as evaluated, would never be planned again. Marked
    dirty instead, they are planned again next cycle, against the mirror as the flight left
    it. Read after the upsert, whose conflict locks the row (Postgres) until this
    transaction ends: the flight cannot land unseen in between."""
    if not keys:
        return []
    t, dialect = table_of(m.OutboxRow).c, session.get_bind().dialect.name
    # the keys as one parameter (db.one_of): a chunk's ~2,200 keys were 3 IN lists of 900
    # binds, each rendered and parsed (~10 us a person on Postgres)
    query = select(t.person_id).where(one_of(dialect, t.idempotency_key), t.status == IN_FLIGHT)
    return sorted({pid for (pid,) in driver_rows(session, query, {"ids": listed(dialect, keys)})
                   if pid is not None})


def claim(session: Session, holder: str, limit: int, *, where: dict[str, str | None],
          claim_seconds: float, now: datetime) -> list[OutboxItem]:
    """Claim up to `limit` due rows for `holder`: claims that expired first (their holder
    died), then pending rows in the order they came due.

    Two statements, each served by the group index (ix_outbox_group) in its own order:
    one ``OR`` of both, ordered by id, made the database gather and sort every due row of
    every group for each claim (a backfill claims a few hundred times from tens of
    thousands of rows)."""
    group = tuple(sorted(column for column, value in where.items() if value is not None))
    values = {"holder": holder, "now": now, "set_now": now,
              "until": now + timedelta(seconds=claim_seconds),
              **{f"group_{column}": where[column] for column in group}}
    items = _claim_rows(session, _claim_statement(group, expired=True), limit, values)
    if len(items) < limit:
        items += _claim_rows(session, _claim_statement(group, expired=False),
                             limit - len(items), values)
    return sorted(items, key=lambda item: item.id)


def _claim_rows(session: Session, stmt: Any, limit: int,
                values: dict[str, Any]) -> list[OutboxItem]:
    return [OutboxItem(*row) for row in session.execute(stmt, {**values, "most": limit})]


@cache
def _claim_statement(group: tuple[str, ...], *, expired: bool) -> Any:
    """The claim of the first ``most`` candidate rows of a group (rows another agent holds
    locked are skipped, on Postgres): expired claims by id, or due rows as they came due.
    Built once per shape: building it cost more than running it."""
    t = table_of(m.OutboxRow)
    same = [t.c[column] == bindparam(f"group_{column}") for column in group]
    if expired:
        candidates = (select(t.c.id).where(t.c.status == IN_FLIGHT,
                                           t.c.claimed_until < bindparam("now"), *same)
                      .order_by(t.c.id))
    else:
        candidates = (select(t.c.id).where(t.c.status == "pending",
                                           t.c.next_attempt_at <= bindparam("now"), *same)
                      .order_by(t.c.next_attempt_at, t.c.id))
    chosen = candidates.limit(bindparam("most")).with_for_update(skip_locked=True)
    return (update(t).where(t.c.id.in_(chosen.scalar_subquery()))
            .values(status=IN_FLIGHT, claimed_by=bindparam("holder"),
                    claimed_until=bindparam("until"), attempts=t.c.attempts + 1,
                    updated_at=bindparam("set_now"))
            .returning(t.c.id, t.c.system, t.c.object, t.c.operation, t.c.remote_id,
                       t.c.person_id, t.c.fields, t.c.idempotency_key, t.c.attempts,
                       t.c.error_code))


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
    claimed = _claimed(session, [r.id for r in results])
    rows = [{"row_id": r.id, **{f"new_{k}": v for k, v in completion_values(
        r, claimed[r.id][0] if r.id in claimed else 1, max_attempts, now).items()}}
        for r in results]
    execute_rows(session, stmt, rows)
    _record_latency(session, [claimed[r.id] for r in results
                              if r.status == "ok" and r.id in claimed], now)


def _record_latency(session: Session, done: Sequence[tuple[int, str, datetime | None, str]],
                    now: datetime) -> None:
    """A change-to-visible latency row for each write done now that was in flight (a row a
    second settlement reaches is done already) and knows the change it carries. A remote
    clock ahead of ours would make a latency negative: it counts as 0."""
    rows = [{"system": system, "day": now.date(), "changed_at": changed, "done_at": now,
             "seconds": max(0.0, (now - changed).total_seconds())}
            for _, system, changed, status in done if status == IN_FLIGHT and changed]
    # Core, not the ORM's bulk insert (which coerces every row's values on its own)
    execute_rows(session, insert(table_of(m.ChangeLatency)), rows)


def release(session: Session, ids: Sequence[int], *, now: datetime,
            code: str | None = None, message: str | None = None) -> int:
    """Claimed rows whose push never ran to the end go back to the queue at once, the
    attempt not counted (a stop for budget or credentials is not the record's fault)."""
    t = table_of(m.OutboxRow)
    touched = 0
    for chunk in chunks(list(ids), IN_LIST):
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


def _claimed(session: Session, ids: list[int]
             ) -> dict[int, tuple[int, str, datetime | None, str]]:
    """id -> (attempts, system, changed_at, status) of these rows, before they settle."""
    t = table_of(m.OutboxRow).c
    out: dict[int, tuple[int, str, datetime | None, str]] = {}
    for chunk in chunks(ids, IN_LIST):
        for row_id, attempts, system, changed, status in session.execute(
                select(t.id, t.attempts, t.system, t.changed_at, t.status)
                .where(t.id.in_(chunk))):
            out[row_id] = (attempts, system, changed, status)
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


def due_counts(session: Session, now: datetime) -> dict[tuple[str, str, str], int]:
    """Rows due now per (system, object, operation) group: pending rows and expired claims
    counted apart, so each count reads the group index alone (ix_outbox_group), never the
    rows (push polls this while a backfill's backlog waits)."""
    t = m.OutboxRow
    group = (t.system, t.object, t.operation)
    out: dict[tuple[str, str, str], int] = {}
    for status, moment in (("pending", t.next_attempt_at <= now),
                           (IN_FLIGHT, t.claimed_until < now)):
        for system, obj, operation, n in session.execute(
                select(*group, func.count()).where(t.status == status, moment)
                .group_by(*group)):
            out[(system, obj, operation)] = out.get((system, obj, operation), 0) + int(n)
    return out


def groups(session: Session, now: datetime) -> list[tuple[str, str, str]]:
    """The (system, object, operation) groups that have rows due now."""
    t = m.OutboxRow
    rows = session.execute(select(t.system, t.object, t.operation).where(_due(now)).distinct())
    return [(s, o, op) for s, o, op in rows]


#: The statuses a cycle's figures read (`pipeline.cycle._outbox_figures`): their rows are the
#: work not done yet, where ``done`` rows grow with every write made (2.2M at 1M persons).
BACKLOG = ("pending", IN_FLIGHT, DEAD)


def counts(session: Session, statuses: Sequence[str] | None = None) -> dict[str, int]:
    """Rows by status (the statuses with none are left out). Given ``statuses``, only those
    are counted: each is a range of the outbox's index by status (ix_outbox_group), so the
    read is bounded by their rows, whatever the number of ``done`` ones. Without, every row
    is counted (a scan of the whole index): for status pages and reports, not every cycle."""
    t = m.OutboxRow
    query = select(t.status, func.count()).group_by(t.status)
    if statuses is not None:
        wanted = sorted(set(statuses))
        if not wanted:
            return {}
        query = query.where(t.status.in_(wanted))
    return {status: count for status, count in session.execute(query)}


def claims(session: Session, now: datetime) -> dict[str, int]:
    """Rows in flight: held by a live claim, or with a claim past its window (re-claimable)."""
    t = m.OutboxRow
    expired = func.sum(case((t.claimed_until < now, 1), else_=0))
    total, stale = session.execute(select(func.count(), expired)
                                   .where(t.status == IN_FLIGHT)).one()
    return {"in_flight": int(total or 0), "claims_expired": int(stale or 0)}


def keys_done(session: Session, keys: Iterable[str]) -> dict[str, str | None]:
    """For keys whose write already succeeded: key -> the remote id it produced."""
    t = m.OutboxRow
    out: dict[str, str | None] = {}
    for chunk in chunks(list(keys), IN_LIST):
        out.update(dict(session.execute(select(t.idempotency_key, t.result_id).where(
            t.idempotency_key.in_(chunk), t.status == "done")).all()))
    return out


class OutboxStore:
    """The outbox and its dead letters, one session per call."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions
        # rung once rows are committed (here and by StateStore.commit_evaluation)
        self.doorbell = Doorbell()

    # ----------------------------------------------------------------- the queue
    def enqueue(self, rows: Sequence[NewOutboxRow], now: datetime | None = None) -> None:
        with self._sessions.write() as session:
            set_dirty(session, enqueue(session, rows, now or utcnow()))
        if rows:
            self.doorbell.ring()

    def claim(self, holder: str, limit: int, *, system: str | None = None,
              object_name: str | None = None, operation: str | None = None,
              claim_seconds: float = 300, now: datetime | None = None) -> list[OutboxItem]:
        """Claim up to `limit` due rows for this holder; concurrent claimers never share one."""
        where = {"system": system, "object": object_name, "operation": operation}
        with self._sessions.write() as session:
            return claim(session, holder, limit, where=where, claim_seconds=claim_seconds,
                         now=now or utcnow())

    def complete(self, results: Sequence[OutboxResult], *, max_attempts: int = 8,
                 now: datetime | None = None) -> None:
        """Record push results: ok -> done; retryable -> pending with backoff (dead after
        `max_attempts`); rejected -> dead letter with the API's code and message."""
        with self._sessions.write() as session:
            complete(session, results, max_attempts=max_attempts, now=now or utcnow())

    def release(self, ids: Sequence[int], *, code: str | None = None,
                message: str | None = None, now: datetime | None = None) -> int:
        """Claimed rows a push could not finish go back to the queue (attempt not counted)."""
        with self._sessions.write() as session:
            return release(session, ids, now=now or utcnow(), code=code, message=message)

    def claim_holders(self) -> dict[str, list[int]]:
        with self._sessions.read() as session:
            return claim_holders(session)

    def groups(self, now: datetime) -> list[tuple[str, str, str]]:
        with self._sessions.read() as session:
            return groups(session, now)

    def due_counts(self, now: datetime | None = None) -> dict[tuple[str, str, str], int]:
        with self._sessions.read() as session:
            return due_counts(session, now or utcnow())

    def counts(self, statuses: Sequence[str] | None = None) -> dict[str, int]:
        """Rows by status; only these statuses, when given (a cycle's `BACKLOG`: `counts`)."""
        with self._sessions.read() as session:
            return counts(session, statuses)

    def claims(self, now: datetime | None = None) -> dict[str, int]:
        with self._sessions.read() as session:
            return claims(session, now or utcnow())

    def keys_done(self, keys: Iterable[str]) -> dict[str, str | None]:
        with self._sessions.read() as session:
            return keys_done(session, keys)

    # ----------------------------------------------------------------- dead letters
    def dead_letters(self, limit: int = 100, code: str | None = None) -> list[dict[str, Any]]:
        with self._sessions.read() as session:
            return deadletters.dead_letters(session, limit, code)

    def dead_total(self) -> int:
        with self._sessions.read() as session:
            return deadletters.dead_total(session)

    def dead_letter_groups(self) -> list[dict[str, Any]]:
        with self._sessions.read() as session:
            return deadletters.dead_letter_groups(session)

    def discard_dead(self, ids: Sequence[int] | None = None, code: str | None = None,
                     now: datetime | None = None) -> int:
        """Take dead letters off the ledger (by id, by code, or all)."""
        with self._sessions.write() as session:
            return deadletters.discard(session, ids, code, now or utcnow())

    def replan_dead(self, ids: Sequence[int] | None = None,
                    code: str | None = None) -> tuple[int, int]:
        """Retry dead letters the only safe way: drop them and mark their persons for
        re-evaluation, so the next cycle plans each write from the current decision and
        mappings. Returns (persons to re-plan, dead letters left because no person owns
        them)."""
        with self._sessions.write() as session:
            persons, orphans = deadletters.take_for_replan(session, ids, code)
            set_dirty(session, persons)
        return len(persons), orphans

    def add_refused(self, parts: Sequence[RefusedPart], now: datetime | None = None) -> int:
        """Dead letters for fields an API refused (one per record); returns how many."""
        if not parts:
            return 0
        with self._sessions.write() as session:
            return deadletters.add_refused(session, parts, now or utcnow())
