"""Persons, the links from remote records to them, and the match queue.

A pulled page queues its records for matching in the transaction that stores them
(`queue_for_match`, called by `StateStore.commit_page`); match takes them off the queue only
once their links are stored, so a crash between the two re-matches them. A person is `dirty`
when its data changed and carries `due_at` when decay or an SLA timer needs it re-evaluated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, func, or_, select, union, update
from sqlalchemy.orm import Session

from state import models as m
from state.common import (
    CLEANED,
    IN_LIST,
    Sessions,
    chunks,
    execute_rows,
    insert_ignore,
    insert_of,
    table_of,
    upsert,
    utcnow,
)
from state.db import driver_rows, listed, one_of
from state.handoff import PENDING

Ref = tuple[str, str, str]  # (system, object, remote_id)
LINK_KEY = ("system", "object", "remote_id")


def queue_for_match(session: Session, refs: Iterable[Ref]) -> None:
    rows = [{"system": s, "object": o, "remote_id": r} for s, o, r in refs]
    insert_ignore(session, table_of(m.MatchQueue), rows, LINK_KEY)


def set_evaluated(session: Session, due: dict[int, datetime | None]) -> None:
    """Clear the dirty flag and set each person's next due time."""
    table = table_of(m.Person)
    if session.get_bind().dialect.name == "postgresql":
        # One statement per chunk, the ids and times as two arrays: an executemany costs the
        # server a statement per person (about 40 us each, a fifth of a rescore's commit).
        # In binary (%b): in text the driver quoted each value of an array in Python (~4% of
        # a Postgres rescore's commit); ints and times only, nothing to clean.
        arrays = (f"UPDATE {table.name} SET dirty = false, due_at = v.due FROM "
                  "unnest(%b::bigint[], %b::timestamptz[]) AS v(id, due) "
                  f"WHERE {table.name}.id = v.id")
        connection = session.connection()
        for chunk in chunks(list(due.items())):
            connection.exec_driver_sql(arrays, ([pid for pid, _ in chunk],
                                                [_aware(when) for _, when in chunk]), CLEANED)
        return
    rows = [{"pid": pid, "due": when} for pid, when in due.items()]
    stmt = (update(table).where(table.c.id == bindparam("pid"))
            .values(dirty=False, due_at=bindparam("due")))
    execute_rows(session, stmt, rows)


def _aware(when: datetime | None) -> datetime | None:
    """The column's own check (models.UTCDateTime), for values bound without it."""
    if when is not None and when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r} given to the state DB; use UTC-aware")
    return when


def set_dirty(session: Session, person_ids: Sequence[int]) -> None:
    for chunk in chunks(person_ids, IN_LIST):
        session.execute(update(m.Person).where(m.Person.id.in_(chunk)).values(dirty=True))


class PersonStore:
    """Persons, links and the match queue."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    # ----------------------------------------------------------------- match queue
    def queued(self) -> set[Ref]:
        """Records pulled since the last completed match (a crash leaves them here)."""
        t = m.MatchQueue
        with self._sessions.read() as session:
            return {(s, o, r) for s, o, r in session.execute(
                select(t.system, t.object, t.remote_id))}

    def queued_objects(self) -> list[tuple[str, str]]:
        """The (system, object) pairs that have records waiting to be matched."""
        t = m.MatchQueue
        with self._sessions.read() as session:
            return [(s, o) for s, o in session.execute(select(t.system, t.object).distinct())]

    def queued_ids(self, system: str, object_name: str, after: str | None,
                   limit: int) -> list[str]:
        """The next ``limit`` queued ids of one object, in id order, after ``after``."""
        t = m.MatchQueue
        query = select(t.remote_id).where(t.system == system, t.object == object_name)
        if after is not None:
            query = query.where(t.remote_id > after)
        with self._sessions.read() as session:
            return list(session.scalars(query.order_by(t.remote_id).limit(limit)))

    def matched(self, refs: Iterable[Ref]) -> None:
        """Take matched records off the queue."""
        t = table_of(m.MatchQueue)
        stmt = delete(t).where(t.c.system == bindparam("s"), t.c.object == bindparam("o"),
                               t.c.remote_id == bindparam("r"))
        rows = [{"s": s, "o": o, "r": r} for s, o, r in refs]
        with self._sessions.write() as session:
            execute_rows(session, stmt, rows)

    # ----------------------------------------------------------------- links
    def links(self) -> dict[Ref, int]:
        """Every (system, object, remote_id) -> person id."""
        t = m.PersonLink
        with self._sessions.read() as session:
            rows = session.execute(select(t.system, t.object, t.remote_id, t.person_id))
            return {(s, o, r): p for s, o, r, p in rows}

    def links_of(self, refs: Iterable[Ref]) -> dict[Ref, int]:
        """The person of each of these records that is linked (one indexed read per object,
        the ids one parameter: db.one_of)."""
        by_object: dict[tuple[str, str], set[str]] = {}
        for system, object_name, rid in refs:
            by_object.setdefault((system, object_name), set()).add(rid)
        t, dialect = table_of(m.PersonLink), self._sessions.dialect
        query = select(t.c.remote_id, t.c.person_id).where(
            t.c.system == bindparam("system"), t.c.object == bindparam("object"),
            one_of(dialect, t.c.remote_id))
        out: dict[Ref, int] = {}
        with self._sessions.read() as session:
            for (system, object_name), ids in by_object.items():
                rows = driver_rows(session, query, {"system": system, "object": object_name,
                                                    "ids": listed(dialect, sorted(ids))})
                out.update({(system, object_name, rid): pid for rid, pid in rows})
        return out

    def refs_of(self, person_ids: Iterable[int]) -> dict[int, list[Ref]]:
        """person id -> the records linked to it (one indexed read: the ids are one
        parameter, db.one_of)."""
        ids = sorted(set(person_ids))
        if not ids:
            return {}
        t, dialect = table_of(m.PersonLink), self._sessions.dialect
        query = select(t.c.person_id, t.c.system, t.c.object, t.c.remote_id).where(
            one_of(dialect, t.c.person_id))
        out: dict[int, list[Ref]] = {}
        with self._sessions.read() as session:
            for pid, system, object_name, rid in driver_rows(
                    session, query, {"ids": listed(dialect, ids)}):
                out.setdefault(pid, []).append((system, object_name, rid))
        return out

    def link(self, links: Sequence[tuple[str, str, str, int, str]],
             now: datetime | None = None, *, keep_existing: bool = False) -> None:
        """Upsert (system, object, remote_id, person_id, linked_by) links; with
        `keep_existing`, a record already linked to a person stays with that person."""
        now = now or utcnow()
        rows = [{"system": s, "object": o, "remote_id": r, "person_id": p, "linked_by": how,
                 "created_at": now} for s, o, r, p, how in links]
        with self._sessions.write() as session:
            if keep_existing:
                insert_ignore(session, table_of(m.PersonLink), rows, LINK_KEY)
            else:
                upsert(session, table_of(m.PersonLink), rows, LINK_KEY,
                       ["person_id", "linked_by"])

    # ----------------------------------------------------------------- persons
    def create(self, email_keys: Sequence[str | None],
               now: datetime | None = None) -> list[int]:
        """Insert persons in bulk; returns their ids in the order given."""
        if not email_keys:
            return []
        now = now or utcnow()
        table = table_of(m.Person)
        ids: list[int] = []
        with self._sessions.write() as session:
            for chunk in chunks(list(email_keys)):
                stmt = insert_of(session, table).returning(table.c.id,
                                                           sort_by_parameter_order=True)
                result = session.execute(stmt, [{"email_key": key, "created_at": now,
                                                 "dirty": True, "due_at": None}
                                                for key in chunk])
                ids.extend(row[0] for row in result)
        return ids

    def mark_dirty(self, person_ids: Iterable[int]) -> None:
        with self._sessions.write() as session:
            set_dirty(session, list(set(person_ids)))

    def dirty_count(self) -> int:
        """How many persons wait for evaluation because their data changed."""
        with self._sessions.read() as session:
            return int(session.scalar(select(func.count()).select_from(m.Person)
                                      .where(m.Person.dirty.is_(True))) or 0)

    def to_evaluate(self, now: datetime) -> list[int]:
        """Persons whose data changed, or whose decay/SLA re-evaluation came due."""
        t = m.Person
        with self._sessions.read() as session:
            return list(session.scalars(select(t.id).where(or_(
                t.dirty.is_(True), and_(t.due_at.is_not(None), t.due_at <= now)))
                .order_by(t.id)))

    def id_page(self, after: int, limit: int) -> list[int]:
        """The next ``limit`` person ids above ``after`` (a cycle pages through persons)."""
        t = m.Person
        with self._sessions.read() as session:
            return list(session.scalars(select(t.id).where(t.id > after).order_by(t.id)
                                        .limit(limit)))

    def due_page(self, now: datetime, after: int, limit: int) -> list[int]:
        """The next ``limit`` ids above ``after`` of persons to evaluate by ``now``: their
        data changed, their decay or SLA re-evaluation came due, or a pending timer step of
        theirs is due (a safety net for the person's own due time)."""
        p, timer = table_of(m.Person), table_of(m.SlaTimerRow)
        # Each side gives its ``limit`` smallest distinct ids (so the union's smallest
        # ``limit`` are right): a page reads about that many rows of each, not every due
        # person above ``after`` (a backfill makes them all due).
        changed = (select(p.c.id.label("pid")).where(p.c.id > after, or_(
            p.c.dirty.is_(True), and_(p.c.due_at.is_not(None), p.c.due_at <= now)))
            .order_by(p.c.id).limit(limit).subquery())
        timed = (select(timer.c.person_id.label("pid")).where(
            timer.c.status == PENDING, timer.c.due_at <= now, timer.c.person_id > after)
            .distinct().order_by(timer.c.person_id).limit(limit).subquery())
        both = union(select(changed.c.pid), select(timed.c.pid)).subquery()
        with self._sessions.read() as session:
            return list(session.scalars(select(both.c.pid).order_by(both.c.pid).limit(limit)))

    def all_ids(self) -> list[int]:
        with self._sessions.read() as session:
            return list(session.scalars(select(m.Person.id).order_by(m.Person.id)))

    def evaluated(self, due: dict[int, datetime | None]) -> None:
        """Clear the dirty flag and set each person's next due time."""
        with self._sessions.write() as session:
            set_evaluated(session, due)
