"""The state store: the only module that talks to the state DB.

Everything the agent remembers goes through `StateStore`: sync cursors, the mirror of remote
records, persons and their links, activities, decisions, the outbox and its dead letters, run
history, leases and idempotency keys. It runs unchanged on SQLite (the embedded default) and
PostgreSQL (production, several agents sharing one DB).

Rules it keeps:
- writes go in bulk (one executemany per chunk of rows, never a round trip per row);
- a stream's mirror rows, activities and cursor commit in ONE transaction (`commit_page`);
- outbox rows are claimed with `FOR UPDATE SKIP LOCKED` on Postgres, so two agents never get
  the same row; a claim that outlives its holder expires and the row becomes claimable again;
- the DB URL's password never reaches a log line or an error (`safe_url`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import (
    Table,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from state import dberrors, leases, outbox, runs, sanitise
from state import models as m
from state.common import chunks as _chunks
from state.common import table_of, utcnow
from state.outbox import OutboxItem, OutboxResult
from syncagent.errors import ConfigError, FatalError

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


_t = table_of


@dataclass(frozen=True)
class CursorState:
    """A stream's position: the last (modstamp, id) read and the ids seen at that modstamp."""

    modstamp: datetime | None = None
    last_id: str | None = None
    boundary_ids: frozenset[str] = frozenset()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MirrorRow:
    """One remote record as last read."""

    system: str
    object: str
    remote_id: str
    fields: dict[str, Any]
    modstamp: datetime | None
    deleted: bool = False
    email_key: str | None = None


@dataclass(frozen=True)
class ActivityRow:
    """One normalised activity; `ref_*` names the remote record of the person it belongs to."""

    system: str
    source_id: str
    kind: str
    occurred_at: datetime
    ref_object: str | None = None
    ref_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    person_id: int | None = None


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


class LeaseLost(FatalError):
    """Another agent holds the lease this one needed."""

    default_hint = "Another agent is working; this one stands by and takes over if it stops."


def normalise_url(url: str) -> str:
    """Accept postgresql:// as shorthand for the psycopg 3 driver we ship."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def safe_url(url: str) -> str:
    """The URL with any password masked: the only form that may reach logs or errors."""
    return make_url(normalise_url(url)).render_as_string(hide_password=True)


class StateStore:
    """All reads and writes of the state DB. Thread-safe: each call opens its own session."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = _make_engine(self.url)
        self.dialect = self.engine.dialect.name
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    # ----------------------------------------------------------------- lifecycle
    def upgrade(self) -> str:
        """Create or migrate the schema to the newest revision; returns that revision."""
        from alembic import command

        dberrors.refuse_newer(self.schema_revision(), label=safe_url(self.url))
        with self._connected("migrate") as connection:
            config = _alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
        return self.schema_revision() or "none"

    def schema_revision(self) -> str | None:
        """The Alembic revision of the DB, or None when it has no schema yet."""
        from alembic.runtime.migration import MigrationContext

        with self._connected("read the schema version") as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def require_schema(self) -> None:
        revision = self.schema_revision()
        if revision is None:
            raise ConfigError(
                f"the state DB {safe_url(self.url)} has no schema yet",
                hint="Run `syncagent db upgrade` (with the same --state) first.",
            )
        dberrors.check_revision(revision, label=safe_url(self.url))

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _connected(self, doing: str) -> Iterator[Connection]:
        try:
            with self.engine.connect() as connection:
                yield connection
        except OperationalError as exc:
            raise ConfigError(
                f"cannot {doing}: the state DB {safe_url(self.url)} is unreachable "
                f"({type(exc.orig).__name__})",
                hint="Check --state / state_url, and that the database server is running.",
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any exception."""
        with self._sessions() as session, session.begin():
            yield session

    # ----------------------------------------------------------------- bulk helpers
    def _insert(self, table: Table) -> Any:
        return (postgresql.insert(table) if self.dialect == "postgresql"
                else sqlite.insert(table))

    def _upsert(self, session: Session, table: Table, rows: Sequence[dict[str, Any]],
                keys: Sequence[str], update_columns: Sequence[str],
                where: Any = None) -> None:
        if not rows:
            return
        stmt = self._insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: stmt.excluded[name] for name in update_columns},
            where=where(stmt.excluded) if where is not None else None,
        )
        for chunk in _chunks(rows):
            session.execute(stmt, list(chunk))

    def _insert_ignore(self, session: Session, table: Table,
                       rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
        if not rows:
            return
        stmt = self._insert(table).on_conflict_do_nothing(index_elements=list(keys))
        for chunk in _chunks(rows):
            session.execute(stmt, list(chunk))

    # ----------------------------------------------------------------- cursors & mirror
    def get_cursor(self, stream: str) -> CursorState | None:
        with self._sessions() as session:
            row = session.get(m.SyncCursor, stream)
            if row is None:
                return None
            return CursorState(row.modstamp, row.last_id, frozenset(row.boundary_ids or ()),
                               dict(row.extra or {}))

    def all_cursors(self) -> dict[str, CursorState]:
        with self._sessions() as session:
            rows = session.scalars(select(m.SyncCursor).order_by(m.SyncCursor.stream))
            return {r.stream: CursorState(r.modstamp, r.last_id, frozenset(r.boundary_ids or ()),
                                          dict(r.extra or {})) for r in rows}

    def commit_page(self, stream: str, records: Sequence[MirrorRow],
                    activities: Sequence[ActivityRow], cursor: CursorState,
                    now: datetime | None = None) -> None:
        """Store one page of a stream and advance its cursor, all or nothing."""
        now = now or utcnow()
        refs = {(r.system, r.object, r.remote_id) for r in records}
        refs |= {(a.system, a.ref_object, a.ref_id) for a in activities
                 if a.ref_object and a.ref_id}
        with self.transaction() as session:
            self._upsert_mirror(session, records, now)
            self._upsert_activities(session, activities)
            self._queue_for_match(session, refs)
            self._save_cursor(session, stream, cursor, now)

    def _queue_for_match(self, session: Session, refs: Iterable[tuple[str, str, str]]) -> None:
        rows = [{"system": s, "object": o, "remote_id": r} for s, o, r in refs]
        self._insert_ignore(session, _t(m.MatchQueue), rows, ["system", "object", "remote_id"])

    def queued_for_match(self) -> set[tuple[str, str, str]]:
        """Records pulled since the last completed match (a crash leaves them here)."""
        t = m.MatchQueue
        with self._sessions() as session:
            return {(s, o, r) for s, o, r in session.execute(
                select(t.system, t.object, t.remote_id))}

    def matched(self, refs: Iterable[tuple[str, str, str]]) -> None:
        """Take matched records off the queue."""
        t = _t(m.MatchQueue)
        stmt = delete(t).where(t.c.system == bindparam("s"), t.c.object == bindparam("o"),
                               t.c.remote_id == bindparam("r"))
        rows = [{"s": s, "o": o, "r": r} for s, o, r in refs]
        with self.transaction() as session:
            for chunk in _chunks(rows):
                session.connection().execute(stmt, list(chunk))

    def _save_cursor(self, session: Session, stream: str, cursor: CursorState,
                     now: datetime) -> None:
        row = {"stream": stream, "modstamp": cursor.modstamp, "last_id": cursor.last_id,
               "boundary_ids": sorted(cursor.boundary_ids), "extra": cursor.extra,
               "updated_at": now}
        self._upsert(session, _t(m.SyncCursor), [row], ["stream"],
                     ["modstamp", "last_id", "boundary_ids", "extra", "updated_at"])

    def _upsert_mirror(self, session: Session, records: Sequence[MirrorRow],
                       now: datetime) -> None:
        table = _t(m.MirrorRecord)
        rows = [{"system": r.system, "object": r.object, "remote_id": r.remote_id,
                 "fields": r.fields, "modstamp": r.modstamp, "deleted": r.deleted,
                 "last_seen_at": now, "agent_written": {}, "email_key": r.email_key}
                for r in records]
        # A re-read inside the lookback window may carry an older copy: never let it win.
        def newer(excluded: Any) -> Any:
            return or_(table.c.modstamp.is_(None), excluded.modstamp.is_(None),
                       excluded.modstamp >= table.c.modstamp)

        self._upsert(session, table, rows, ["system", "object", "remote_id"],
                     ["fields", "modstamp", "deleted", "last_seen_at", "email_key"], where=newer)

    def _upsert_activities(self, session: Session, activities: Sequence[ActivityRow]) -> None:
        rows = [{"system": a.system, "source_id": a.source_id, "kind": a.kind,
                 "occurred_at": a.occurred_at, "ref_object": a.ref_object, "ref_id": a.ref_id,
                 "person_id": a.person_id, "details": a.details} for a in activities]
        self._upsert(session, _t(m.Activity), rows, ["system", "source_id"],
                     ["kind", "occurred_at", "ref_object", "ref_id", "details"])

    def upsert_mirror(self, records: Sequence[MirrorRow], now: datetime | None = None) -> None:
        with self.transaction() as session:
            self._upsert_mirror(session, records, now or utcnow())

    def mirror_records(self, system: str, object_name: str | None = None,
                       ids: Iterable[str] | None = None) -> list[MirrorRow]:
        query = select(m.MirrorRecord).where(m.MirrorRecord.system == system)
        if object_name is not None:
            query = query.where(m.MirrorRecord.object == object_name)
        id_list = list(ids) if ids is not None else None
        with self._sessions() as session:
            if id_list is None:
                rows = list(session.scalars(query))
            else:
                rows = [row for chunk in _chunks(id_list, 900)
                        for row in session.scalars(query.where(
                            m.MirrorRecord.remote_id.in_(chunk)))]
        return [MirrorRow(r.system, r.object, r.remote_id, dict(r.fields), r.modstamp,
                          r.deleted, r.email_key) for r in rows]

    def email_index(self) -> list[tuple[str, str, str, str]]:
        """(system, object, remote_id, email_key) of every live record that has an e-mail."""
        t = m.MirrorRecord
        with self._sessions() as session:
            rows = session.execute(select(t.system, t.object, t.remote_id, t.email_key).where(
                t.email_key.is_not(None), t.deleted.is_(False)))
            return [(s, o, r, k) for s, o, r, k in rows if k is not None]

    def mark_missing_deleted(self, system: str, object_name: str,
                             present_ids: Iterable[str]) -> list[str]:
        """After a full id reconcile: mirror rows whose id no longer exists were hard-deleted."""
        present = set(present_ids)
        t = m.MirrorRecord
        with self.transaction() as session:
            known = session.scalars(select(t.remote_id).where(
                t.system == system, t.object == object_name, t.deleted.is_(False))).all()
            gone = [rid for rid in known if rid not in present]
            for chunk in _chunks(gone, 900):
                session.execute(update(t).where(t.system == system, t.object == object_name,
                                                t.remote_id.in_(chunk)).values(deleted=True))
            self._queue_for_match(session, [(system, object_name, rid) for rid in gone])
        return gone

    def agent_written(self, system: str, object_name: str,
                      ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """What the agent last wrote to each record: {remote_id: {field: {value, at}}}."""
        table = m.MirrorRecord
        out: dict[str, dict[str, Any]] = {}
        with self._sessions() as session:
            for chunk in _chunks(list(ids), 900):
                for rid, written in session.execute(
                        select(table.remote_id, table.agent_written).where(
                            table.system == system, table.object == object_name,
                            table.remote_id.in_(chunk))):
                    out[rid] = dict(written or {})
        return out

    def record_written(self, system: str, object_name: str,
                       writes: dict[str, dict[str, Any]], now: datetime | None = None) -> None:
        """After a successful push: the mirror now holds these values, written by the agent."""
        now = now or utcnow()
        stamp = now.isoformat()
        t = _t(m.MirrorRecord)
        where = (t.c.system == system, t.c.object == object_name)
        with self.transaction() as session:
            existing = {rid: (fields, written) for chunk in _chunks(list(writes), 900)
                        for rid, fields, written in session.execute(
                            select(t.c.remote_id, t.c.fields, t.c.agent_written)
                            .where(*where, t.c.remote_id.in_(chunk)))}
            updates, inserts = [], []
            for rid, values in writes.items():
                marks = {name: {"value": value, "at": stamp} for name, value in values.items()}
                if rid in existing:
                    fields, written = existing[rid]
                    updates.append({"rid": rid, "new_fields": {**fields, **values},
                                    "new_written": {**(written or {}), **marks}})
                else:
                    inserts.append({"system": system, "object": object_name, "remote_id": rid,
                                    "fields": dict(values), "modstamp": None, "deleted": False,
                                    "last_seen_at": now, "agent_written": marks,
                                    "email_key": None})
            stmt = (update(t).where(*where, t.c.remote_id == bindparam("rid"))
                    .values(fields=bindparam("new_fields"),
                            agent_written=bindparam("new_written")))
            for chunk in _chunks(updates):
                session.connection().execute(stmt, list(chunk))
            self._insert_ignore(session, t, inserts, ["system", "object", "remote_id"])

    # ----------------------------------------------------------------- activities
    def activities_for(self, refs: Iterable[tuple[str, str]]) -> dict[tuple[str, str],
                                                                       list[ActivityRow]]:
        """Activities by the (object, remote id) of the record they point at."""
        wanted = list(set(refs))
        out: dict[tuple[str, str], list[ActivityRow]] = {}
        table = m.Activity
        with self._sessions() as session:
            for chunk in _chunks([rid for _obj, rid in wanted], 900):
                for a in session.scalars(select(table).where(table.ref_id.in_(chunk))):
                    key = (a.ref_object or "", a.ref_id or "")
                    out.setdefault(key, []).append(ActivityRow(
                        a.system, a.source_id, a.kind, a.occurred_at, a.ref_object, a.ref_id,
                        dict(a.details or {}), a.person_id))
        return out

    # ----------------------------------------------------------------- persons & links
    def links(self) -> dict[tuple[str, str, str], int]:
        """Every (system, object, remote_id) -> person id."""
        with self._sessions() as session:
            rows = session.execute(select(m.PersonLink.system, m.PersonLink.object,
                                          m.PersonLink.remote_id, m.PersonLink.person_id))
            return {(s, o, r): p for s, o, r, p in rows}

    def create_persons(self, email_keys: Sequence[str | None],
                       now: datetime | None = None) -> list[int]:
        """Insert persons in bulk; returns their ids in the order given."""
        if not email_keys:
            return []
        now = now or utcnow()
        table = _t(m.Person)
        ids: list[int] = []
        with self.transaction() as session:
            for chunk in _chunks(list(email_keys)):
                stmt = self._insert(table).returning(table.c.id, sort_by_parameter_order=True)
                result = session.execute(stmt, [{"email_key": key, "created_at": now,
                                                 "dirty": True, "due_at": None}
                                                for key in chunk])
                ids.extend(row[0] for row in result)
        return ids

    def link(self, links: Sequence[tuple[str, str, str, int, str]],
             now: datetime | None = None, *, keep_existing: bool = False) -> None:
        """Upsert (system, object, remote_id, person_id, linked_by) links; with
        `keep_existing`, a record already linked to a person stays with that person."""
        now = now or utcnow()
        rows = [{"system": s, "object": o, "remote_id": r, "person_id": p, "linked_by": how,
                 "created_at": now} for s, o, r, p, how in links]
        keys = ["system", "object", "remote_id"]
        with self.transaction() as session:
            if keep_existing:
                self._insert_ignore(session, _t(m.PersonLink), rows, keys)
            else:
                self._upsert(session, _t(m.PersonLink), rows, keys, ["person_id", "linked_by"])

    def mark_dirty(self, person_ids: Iterable[int]) -> None:
        ids = list(set(person_ids))
        with self.transaction() as session:
            for chunk in _chunks(ids, 900):
                session.execute(update(m.Person).where(m.Person.id.in_(chunk))
                                .values(dirty=True))

    def persons_to_evaluate(self, now: datetime) -> list[int]:
        """Persons whose data changed, or whose decay/SLA re-evaluation came due."""
        with self._sessions() as session:
            return list(session.scalars(select(m.Person.id).where(or_(
                m.Person.dirty.is_(True),
                and_(m.Person.due_at.is_not(None), m.Person.due_at <= now)))
                .order_by(m.Person.id)))

    def all_person_ids(self) -> list[int]:
        with self._sessions() as session:
            return list(session.scalars(select(m.Person.id).order_by(m.Person.id)))

    def evaluated(self, due: dict[int, datetime | None]) -> None:
        """Clear the dirty flag and set each person's next due time."""
        with self.transaction() as session:
            self._evaluated(session, due)

    @staticmethod
    def _evaluated(session: Session, due: dict[int, datetime | None]) -> None:
        rows = [{"pid": pid, "due": when} for pid, when in due.items()]
        table = _t(m.Person)
        stmt = (update(table).where(table.c.id == bindparam("pid"))
                .values(dirty=False, due_at=bindparam("due")))
        for chunk in _chunks(rows):
            session.connection().execute(stmt, list(chunk))

    # ----------------------------------------------------------------- decisions
    def _save_decisions(self, session: Session, decisions: Sequence[dict[str, Any]]) -> None:
        columns = ["grade", "score", "segment", "stage", "owner", "track", "mql_date",
                   "reasons", "evaluated_at"]
        self._upsert(session, _t(m.Decision), decisions, ["person_id"], columns)

    def decisions(self, person_ids: Iterable[int] | None = None) -> dict[int, dict[str, Any]]:
        query = select(m.Decision)
        with self._sessions() as session:
            if person_ids is None:
                rows = list(session.scalars(query))
            else:
                rows = [r for chunk in _chunks(list(person_ids), 900)
                        for r in session.scalars(query.where(m.Decision.person_id.in_(chunk)))]
        return {r.person_id: {c.name: getattr(r, c.name) for c in _t(m.Decision).columns}
                for r in rows}

    # ----------------------------------------------------------------- outbox
    def enqueue(self, rows: Sequence[NewOutboxRow], now: datetime | None = None) -> None:
        """Add planned writes. Side effects (create, upsert, list changes) happen once per key,
        ever; an update with the same key replaces a pending one, re-arms a done one, and
        re-arms a dead one only if its values changed (so a rejected write is not retried
        forever with the same values)."""
        with self.transaction() as session:
            self._enqueue(session, rows, now or utcnow())

    def commit_evaluation(self, rows: Sequence[NewOutboxRow],
                          decisions: Sequence[dict[str, Any]],
                          due: dict[int, datetime | None], values: dict[str, Any],
                          now: datetime | None = None) -> None:
        """Planned writes, decisions, the persons' next due times and named state, together:
        a crash can never mark a person evaluated whose writes were not queued."""
        now = now or utcnow()
        with self.transaction() as session:
            self._enqueue(session, rows, now)
            self._save_decisions(session, decisions)
            self._evaluated(session, due)
            for name, value in values.items():
                self._upsert(session, _t(m.KeyValue), [{"name": name, "value": value,
                                                        "updated_at": now}],
                             ["name"], ["value", "updated_at"])

    def _enqueue(self, session: Session, rows: Sequence[NewOutboxRow], now: datetime) -> None:
        table = _t(m.OutboxRow)

        def as_row(row: NewOutboxRow) -> dict[str, Any]:
            return {"system": row.system, "object": row.object, "operation": row.operation,
                    "remote_id": row.remote_id, "person_id": row.person_id,
                    "fields": row.fields, "idempotency_key": row.idempotency_key,
                    "status": "pending", "attempts": 0, "next_attempt_at": now,
                    "created_at": now, "updated_at": now}

        once = [as_row(r) for r in rows if r.operation != "update"]
        updates = [as_row(r) for r in rows if r.operation == "update"]
        c = table.c

        def rearm(excluded: Any) -> Any:
            return or_(c.status == "pending", c.status == "done",
                       and_(or_(c.status == outbox.DEAD, c.status == outbox.DISCARDED),
                            c.fields != excluded.fields))

        self._insert_ignore(session, table, once, ["idempotency_key"])
        self._upsert(session, table, updates, ["idempotency_key"],
                     ["fields", "remote_id", "status", "attempts", "next_attempt_at",
                      "updated_at"], where=rearm)

    def claim_outbox(self, holder: str, limit: int, *, system: str | None = None,
                     object_name: str | None = None, operation: str | None = None,
                     claim_seconds: float = 300, now: datetime | None = None
                     ) -> list[OutboxItem]:
        """Claim up to `limit` due rows for this holder. Concurrent claimers never share a row:
        Postgres skips rows another transaction has locked; SQLite has one writer at a time."""
        where = {"system": system, "object": object_name, "operation": operation}
        with self.transaction() as session:
            return outbox.claim(session, holder, limit, where=where,
                                claim_seconds=claim_seconds, now=now or utcnow())

    def complete_outbox(self, results: Sequence[OutboxResult], *, max_attempts: int = 8,
                        now: datetime | None = None) -> None:
        """Record push results: ok -> done; retryable -> pending with backoff (dead after
        `max_attempts`); rejected -> dead letter with the API's code and message."""
        with self.transaction() as session:
            outbox.complete(session, results, max_attempts=max_attempts, now=now or utcnow())

    def release_outbox(self, ids: Sequence[int], *, code: str | None = None,
                       message: str | None = None, now: datetime | None = None) -> int:
        """Claimed rows a push could not finish go back to the queue (attempt not counted)."""
        with self.transaction() as session:
            return outbox.release(session, ids, now=now or utcnow(), code=code,
                                  message=message)

    def outbox_claim_holders(self) -> dict[str, list[int]]:
        """The rows in flight, by the holder that claimed them."""
        with self._sessions() as session:
            return outbox.claim_holders(session)

    def outbox_groups(self, now: datetime) -> list[tuple[str, str, str]]:
        """The (system, object, operation) groups that have rows due now."""
        with self._sessions() as session:
            return outbox.groups(session, now)

    def outbox_counts(self) -> dict[str, int]:
        with self._sessions() as session:
            return outbox.counts(session)

    def outbox_claims(self, now: datetime | None = None) -> dict[str, int]:
        """Rows in flight, and how many of them have a claim past its window."""
        with self._sessions() as session:
            return outbox.claims(session, now or utcnow())

    def dead_letters(self, limit: int = 100, code: str | None = None) -> list[dict[str, Any]]:
        with self._sessions() as session:
            return outbox.dead_letters(session, limit, code)

    def dead_letter_total(self) -> int:
        with self._sessions() as session:
            return outbox.dead_total(session)

    def dead_letter_groups(self) -> list[dict[str, Any]]:
        with self._sessions() as session:
            return outbox.dead_letter_groups(session)

    def discard_dead(self, ids: Sequence[int] | None = None, code: str | None = None,
                     now: datetime | None = None) -> int:
        """Take dead letters off the ledger (by id, by code, or all)."""
        with self.transaction() as session:
            return outbox.discard(session, ids, code, now or utcnow())

    def replan_dead(self, ids: Sequence[int] | None = None,
                    code: str | None = None) -> tuple[int, int]:
        """Retry dead letters the only safe way: drop them and mark their persons for
        re-evaluation, so the next cycle plans each write from the current decision and
        mappings. Returns (persons to re-plan, dead letters left because no person owns
        them)."""
        with self.transaction() as session:
            persons, orphans = outbox.take_for_replan(session, ids, code)
            for chunk in _chunks(persons, 900):
                session.execute(update(m.Person).where(m.Person.id.in_(chunk))
                                .values(dirty=True))
        return len(persons), orphans

    def retry_dead(self, ids: Sequence[int] | None = None, now: datetime | None = None) -> int:
        """Kept for callers of the old name: re-plans, never re-sends a stored payload."""
        persons, _orphans = self.replan_dead(ids)
        return persons

    def outbox_keys_done(self, keys: Iterable[str]) -> dict[str, str | None]:
        """For keys whose write already succeeded: key -> the remote id it produced."""
        with self._sessions() as session:
            return outbox.keys_done(session, keys)

    # ----------------------------------------------------------------- leases
    def acquire_lease(self, name: str, holder: str, seconds: float,
                      now: datetime | None = None) -> bool:
        """Take or renew the named lease, by the database's clock; True when this holder has
        it for `seconds` more. Another holder's lease is taken only once it has expired."""
        with self.transaction() as session:
            return leases.acquire(session, self.dialect, name, holder, seconds, now)

    def release_lease(self, name: str, holder: str) -> None:
        with self.transaction() as session:
            leases.release(session, name, holder)

    def leases(self) -> list[dict[str, Any]]:
        with self._sessions() as session:
            return leases.all_leases(session)

    # ----------------------------------------------------------------- runs
    def start_run(self, kind: str = "cycle", holder: str | None = None,
                  now: datetime | None = None) -> int:
        with self.transaction() as session:
            return runs.start(session, kind, holder, now or utcnow())

    def finish_run(self, run_id: int, *, status: str, counts: dict[str, Any],
                   api_calls: dict[str, Any], errors: list[Any],
                   now: datetime | None = None) -> None:
        with self.transaction() as session:
            runs.finish(session, run_id, status=status, counts=counts, api_calls=api_calls,
                        errors=errors, now=now or utcnow())

    def recent_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        with self._sessions() as session:
            return runs.recent(session, limit)

    def last_completed_at(self) -> datetime | None:
        with self._sessions() as session:
            return runs.last_completed_at(session)

    # ----------------------------------------------------------------- small named state
    def get_value(self, name: str, default: Any = None) -> Any:
        with self._sessions() as session:
            row = session.get(m.KeyValue, name)
            return default if row is None else row.value

    def set_value(self, name: str, value: Any, now: datetime | None = None) -> None:
        row = {"name": name, "value": value, "updated_at": now or utcnow()}
        with self.transaction() as session:
            self._upsert(session, _t(m.KeyValue), [row], ["name"], ["value", "updated_at"])

    # ----------------------------------------------------------------- data quality
    def flag(self, kind: str, key: str, detail: dict[str, Any],
             now: datetime | None = None) -> None:
        """Record a data-quality item once per key (an ambiguous match, say)."""
        row = {"kind": kind, "key": key, "detail": detail, "created_at": now or utcnow(),
               "resolved": False}
        with self.transaction() as session:
            self._upsert(session, _t(m.DataQualityItem), [row], ["key"], ["detail"])

    def data_quality(self, limit: int = 100) -> list[dict[str, Any]]:
        t = m.DataQualityItem
        with self._sessions() as session:
            rows = session.scalars(select(t).where(t.resolved.is_(False)).order_by(t.id)
                                   .limit(limit))
            return [{"kind": r.kind, "key": r.key, "detail": r.detail} for r in rows]

    # ----------------------------------------------------------------- status
    def status_summary(self, last_runs: int = 5) -> dict[str, Any]:
        """Everything `syncagent status` shows, as plain data."""
        self.require_schema()
        with self._sessions() as session:
            dead = outbox.dead_total(session)
            claims = outbox.claims(session, utcnow())
            persons = session.scalar(select(func.count()).select_from(m.Person)) or 0
            last_completed = runs.last_completed_at(session)
        return {
            "state": safe_url(self.url),
            "schema_revision": self.schema_revision(),
            "runs": self.recent_runs(last_runs),
            "cursors": {name: {"modstamp": c.modstamp, "last_id": c.last_id}
                        for name, c in self.all_cursors().items()},
            "outbox": self.outbox_counts(),
            "in_flight": claims["in_flight"],
            "claims_expired": claims["claims_expired"],
            "dead_letters": dead,
            "last_completed_at": last_completed,
            "persons": int(persons),
            "leases": self.leases(),
            "api_usage": self.get_value("api_usage", {}),
            "last_cycle": self.get_value("last_cycle", {}),
        }


def _make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except Exception:  # sqlalchemy raises ArgumentError with the URL in the message
        raise ConfigError("the state URL is not a valid database URL",
                          hint="Use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB."
                          ) from None
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, json_serializer=sanitise.dumps, connect_args={
            "timeout": dberrors.SQLITE_BUSY_SECONDS, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        dberrors.install(engine, parsed.database or url)
        return engine
    engine = create_engine(url, json_serializer=sanitise.dumps, pool_pre_ping=True,
                           connect_args={"connect_timeout": 10})
    dberrors.install(engine, safe_url(url))
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (status, preview) run while a cycle writes; NORMAL is durable in WAL.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(dberrors.SQLITE_BUSY_SECONDS * 1000)}")
    cursor.close()


def schema_head() -> str:
    """The newest migration revision this version of syncagent ships."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config("")).get_current_head()
    return str(head)


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser treats % as interpolation; the URL is handed over via attributes instead.
    config.attributes["url"] = url
    return config


__all__ = [
    "ActivityRow",
    "CursorState",
    "LeaseLost",
    "MirrorRow",
    "NewOutboxRow",
    "OutboxItem",
    "OutboxResult",
    "StateStore",
    "safe_url",
    "schema_head",
]
