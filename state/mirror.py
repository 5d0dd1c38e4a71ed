"""Cursors and the mirror: where each stream stopped reading, what each remote record held
when last read (or last written by the agent), and the activities pulled with them.

`StateStore.commit_page` writes a page's records, activities and cursor in one transaction
through the session-level functions here; `MirrorStore` is everything else, one session per
call. A re-read inside the lookback window never overwrites a newer mirror row.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from state import jsontext
from state import models as m
from state.activities import ActivityTuple, activity_tuples, sqlite_utc
from state.activities import grouped as _grouped
from state.common import (
    IN_LIST,
    Sessions,
    chunks,
    insert_ignore,
    insert_of,
    table_of,
    upsert,
    utcnow,
)
from state.db import column_reader, driver_rows, json_text, listed, one_of
from state.persons import queue_for_match

RECORD_KEY = ("system", "object", "remote_id")


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
    created_at: datetime | None = None   # when the system created it (its profile says)


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


def _new_row(system: str, object_name: str, remote_id: str, fields: dict[str, Any],
             modstamp: datetime | None, deleted: bool, email_key: str | None) -> MirrorRow:
    """``MirrorRow(...)``, built by filling the new object's attribute dict: a frozen
    dataclass's own __init__ sets each field through object.__setattr__ (~1.3 us a row more;
    an evaluation builds one per record). MirrorRow has no __slots__ and no __post_init__
    (tests/state/test_reads_mirror.py checks both, and that the two rows are equal)."""
    row = _bare(MirrorRow)
    vars(row).update(system=system, object=object_name, remote_id=remote_id, fields=fields,
                     modstamp=modstamp, deleted=deleted, email_key=email_key, created_at=None)
    return row


_bare = object.__new__


def _marks(stored: Any, read_json: Callable[[Any], Any]) -> dict[str, Any]:
    """What the agent wrote to a record, from its stored marks: most records hold none, and
    their ``{}`` (text, on SQLite) is not decoded (~1 us a record)."""
    if not stored or stored == "{}":
        return {}
    return read_json(stored) or {}


def _cursor(row: m.SyncCursor) -> CursorState:
    return CursorState(row.modstamp, row.last_id, frozenset(row.boundary_ids or ()),
                       dict(row.extra or {}))


def save_cursor(session: Session, stream: str, cursor: CursorState, now: datetime) -> None:
    row = {"stream": stream, "modstamp": cursor.modstamp, "last_id": cursor.last_id,
           "boundary_ids": sorted(cursor.boundary_ids), "extra": cursor.extra,
           "updated_at": now}
    upsert(session, table_of(m.SyncCursor), [row], ["stream"],
           ["modstamp", "last_id", "boundary_ids", "extra", "updated_at"])


def upsert_records(session: Session, records: Sequence[MirrorRow], now: datetime) -> None:
    table = table_of(m.MirrorRecord)
    rows = [{"system": r.system, "object": r.object, "remote_id": r.remote_id,
             "fields": r.fields, "modstamp": r.modstamp, "deleted": r.deleted,
             "last_seen_at": now, "agent_written": {}, "email_key": r.email_key,
             "created_at": r.created_at}
            for r in records]

    # A re-read inside the lookback window may carry an older copy: never let it win.
    def newer(excluded: Any) -> Any:
        return or_(table.c.modstamp.is_(None), excluded.modstamp.is_(None),
                   excluded.modstamp >= table.c.modstamp)

    upsert(session, table, rows, RECORD_KEY,
           ["fields", "modstamp", "deleted", "last_seen_at", "email_key", "created_at"],
           where=newer)


def upsert_activities(session: Session, activities: Sequence[ActivityRow]) -> None:
    rows = [{"system": a.system, "source_id": a.source_id, "kind": a.kind,
             "occurred_at": a.occurred_at, "ref_object": a.ref_object, "ref_id": a.ref_id,
             "person_id": a.person_id, "details": a.details} for a in activities]
    upsert(session, table_of(m.Activity), rows, ["system", "source_id"],
           ["kind", "occurred_at", "ref_object", "ref_id", "details"])


class MirrorStore:
    """Cursors, mirror records and activities."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    # ----------------------------------------------------------------- cursors
    def cursor(self, stream: str) -> CursorState | None:
        with self._sessions.read() as session:
            row = session.get(m.SyncCursor, stream)
            return None if row is None else _cursor(row)

    def cursors(self) -> dict[str, CursorState]:
        with self._sessions.read() as session:
            rows = session.scalars(select(m.SyncCursor).order_by(m.SyncCursor.stream))
            return {r.stream: _cursor(r) for r in rows}

    # ----------------------------------------------------------------- records
    def upsert(self, records: Sequence[MirrorRow], now: datetime | None = None) -> None:
        with self._sessions.write() as session:
            upsert_records(session, records, now or utcnow())

    def records(self, system: str, object_name: str | None = None,
                ids: Iterable[str] | None = None) -> list[MirrorRow]:
        # Core rows, not ORM objects: pull (echoes) and match read every record they met
        t = table_of(m.MirrorRecord)
        query = select(t.c.object, t.c.remote_id, t.c.fields, t.c.modstamp, t.c.deleted,
                       t.c.email_key, t.c.created_at).where(t.c.system == system)
        if object_name is not None:
            query = query.where(t.c.object == object_name)
        with self._sessions.read() as session:
            if ids is None:
                rows = list(session.execute(query))
            else:   # the ids as one parameter (db.one_of): one statement, however many
                dialect, wanted = self._sessions.dialect, list(ids)
                rows = list(session.execute(query.where(one_of(dialect, t.c.remote_id)),
                                            {"ids": listed(dialect, wanted)})) if wanted else []
        return [MirrorRow(system, obj, rid, fields, stamp, bool(deleted), key, created)
                for obj, rid, fields, stamp, deleted, key, created in rows]

    def match_rows(self, system: str, object_name: str, ids: Sequence[str],
                   fields: Sequence[str]) -> list[MirrorRow]:
        """The records as matching reads them: ``fields`` holds only the named fields (the
        cross ids), taken out of the stored JSON by the database; the rest of a record's
        fields are never decoded (a backfill matches every person record)."""
        if not ids:
            return []
        t, dialect = table_of(m.MirrorRecord), self._sessions.dialect
        query = select(t.c.remote_id, t.c.modstamp, t.c.deleted, t.c.email_key,
                       *(t.c.fields[name] for name in fields)).where(
            t.c.system == system, t.c.object == object_name, one_of(dialect, t.c.remote_id))
        out: list[MirrorRow] = []
        with self._sessions.read() as session:
            for rid, stamp, deleted, key, *values in session.execute(
                    query, {"ids": listed(dialect, ids)}):
                named = {n: v for n, v in zip(fields, values, strict=True) if v is not None}
                out.append(MirrorRow(system, object_name, rid, named, stamp, bool(deleted),
                                     key))
        return out

    def person_rows(self, refs: Iterable[tuple[str, str, str]]
                    ) -> dict[tuple[str, str, str], tuple[MirrorRow, dict[str, Any]]]:
        """Each record's row and what the agent last wrote to it: one indexed read per object
        (a cycle asks for one chunk of persons at a time; the ids are one parameter)."""
        by_object: dict[tuple[str, str], list[str]] = {}
        for system, object_name, rid in refs:
            by_object.setdefault((system, object_name), []).append(rid)
        t, dialect = table_of(m.MirrorRecord), self._sessions.dialect
        # the JSON as text, decoded here (jsontext): on Postgres not by psycopg's JSONB loader
        query = select(t.c.remote_id, json_text(dialect, t.c.fields), t.c.modstamp,
                       t.c.deleted, t.c.email_key, json_text(dialect, t.c.agent_written)).where(
            t.c.system == bindparam("system"), t.c.object == bindparam("object"),
            one_of(dialect, t.c.remote_id))
        json_of = jsontext.read_column
        out: dict[tuple[str, str, str], tuple[MirrorRow, dict[str, Any]]] = {}
        with self._sessions.read() as session:
            moment = column_reader(session.get_bind().dialect, t.c.modstamp)
            if dialect == "sqlite":
                moment = sqlite_utc(moment)
            for (system, object_name), ids in by_object.items():
                for rid, fields, stamp, deleted, key, written in driver_rows(session, query, {
                        "system": system, "object": object_name,
                        "ids": listed(dialect, ids)}):
                    row = _new_row(system, object_name, rid, json_of(fields), moment(stamp),
                                   bool(deleted), key)
                    out[(system, object_name, rid)] = (row, _marks(written, json_of))
        return out

    def iter_records(self, system: str, object_name: str,
                     page: int = 2_000) -> Iterator[MirrorRow]:
        """Every record of one object, read a page at a time (never all at once)."""
        t = table_of(m.MirrorRecord)
        query = (select(t.c.remote_id, t.c.fields, t.c.modstamp, t.c.deleted, t.c.email_key)
                 .where(t.c.system == system, t.c.object == object_name)
                 .execution_options(yield_per=page))
        with self._sessions.read() as session:
            for rid, fields, stamp, deleted, key in session.execute(query):
                yield MirrorRow(system, object_name, rid, fields, stamp, deleted, key)

    def email_holders(self, keys: Iterable[str]) -> list[tuple[str, str, str, str]]:
        """(system, object, remote_id, email_key) of the live records holding one of these
        e-mail keys (one indexed read, the keys as one parameter: a cycle never loads every
        e-mail)."""
        wanted = sorted(set(keys))
        if not wanted:
            return []
        t, dialect = table_of(m.MirrorRecord), self._sessions.dialect
        query = select(t.c.system, t.c.object, t.c.remote_id, t.c.email_key).where(
            one_of(dialect, t.c.email_key), t.c.deleted.is_(False))
        with self._sessions.read() as session:
            rows = driver_rows(session, query, {"ids": listed(dialect, wanted)})
        return [(s, o, r, k) for s, o, r, k in rows if k is not None]

    def email_index(self) -> list[tuple[str, str, str, str]]:
        """(system, object, remote_id, email_key) of every live record that has an e-mail."""
        t = m.MirrorRecord
        with self._sessions.read() as session:
            rows = session.execute(select(t.system, t.object, t.remote_id, t.email_key).where(
                t.email_key.is_not(None), t.deleted.is_(False)))
            return [(s, o, r, k) for s, o, r, k in rows if k is not None]

    def mark_missing_deleted(self, system: str, object_name: str,
                             present: Container[str]) -> list[str]:
        """After a full id reconcile: mirror rows whose id no longer exists were hard-deleted.
        The mirror's ids are streamed, a chunk at a time, and only the missing ones are kept:
        neither side's whole id list is ever held (``present`` may be a compact IdSet)."""
        t = m.MirrorRecord
        with self._sessions.write() as session:
            known = session.scalars(select(t.remote_id).where(
                t.system == system, t.object == object_name, t.deleted.is_(False))
                .execution_options(yield_per=IN_LIST))
            gone = [rid for rid in known if rid not in present]
            for chunk in chunks(gone, IN_LIST):
                session.execute(update(t).where(t.system == system, t.object == object_name,
                                                t.remote_id.in_(chunk)).values(deleted=True))
            # Queued in the same transaction: a crash cannot hide the deletion from matching.
            queue_for_match(session, [(system, object_name, rid) for rid in gone])
        return gone

    # ----------------------------------------------------------------- agent's own writes
    def agent_written(self, system: str, object_name: str,
                      ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """What the agent last wrote to each record: {remote_id: {field: {value, at}}}."""
        wanted = list(ids)
        if not wanted:
            return {}
        t, dialect = table_of(m.MirrorRecord), self._sessions.dialect
        query = select(t.c.remote_id, t.c.agent_written).where(
            t.c.system == system, t.c.object == object_name, one_of(dialect, t.c.remote_id))
        with self._sessions.read() as session:
            return {rid: dict(written or {}) for rid, written in session.execute(
                query, {"ids": listed(dialect, wanted)})}

    def record_written(self, system: str, object_name: str,
                       writes: dict[str, dict[str, Any]], now: datetime | None = None) -> None:
        """After a successful push: the mirror now holds these values, written by the agent."""
        now = now or utcnow()
        at = now.isoformat()
        rows = [_written_row(system, object_name, rid, values, now, at)
                for rid, values in writes.items()]
        mergeable = [_mergeable(r["fields"]) for r in rows]
        with self._sessions.write() as session:
            _merge_written(session, [r for r, ok in zip(rows, mergeable, strict=True) if ok])
            _merge_in_python(session, system, object_name,
                             [r for r, ok in zip(rows, mergeable, strict=True) if not ok])

    # ----------------------------------------------------------------- activities
    def activities_for(self, refs: Iterable[tuple[str, str]]
                       ) -> dict[tuple[str, str], list[ActivityRow]]:
        """Activities by the (object, remote id) of the record they point at."""
        return {(object_name, rid): [
            ActivityRow(system, source, kind, when, object_name, rid, details, pid)
            for system, source, kind, when, details, pid in rows]
            for (object_name, rid), rows in self.activity_tuples(refs).items()}

    def activity_tuples(self, refs: Iterable[tuple[str, str]]
                        ) -> dict[tuple[str, str], list[ActivityTuple]]:
        """`activities_for` as plain tuples, (system, source id, kind, occurred_at, details,
        person id): what an evaluation reads, without an ActivityRow to build for each
        (~1 us a row, 4 rows a person; state/activities.py)."""
        return activity_tuples(self._sessions, refs)

    def activities_by_source(self, keys: Iterable[tuple[str, str]]
                             ) -> dict[tuple[str, str], ActivityRow]:
        """The stored activities with these (system, source id) keys (their primary key):
        only the rows asked for, never every activity of the records they point at."""
        by_system = _grouped(keys)
        out: dict[tuple[str, str], ActivityRow] = {}
        t, dialect = table_of(m.Activity), self._sessions.dialect
        query = select(t.c.source_id, t.c.kind, t.c.occurred_at, t.c.ref_object, t.c.ref_id,
                       t.c.details, t.c.person_id).where(t.c.system == bindparam("system"),
                                                         one_of(dialect, t.c.source_id))
        with self._sessions.read() as session:
            for system, ids in by_system.items():
                for source, kind, when, ref_object, rid, details, pid in session.execute(
                        query, {"system": system, "ids": listed(dialect, sorted(ids))}):
                    out[(system, source)] = ActivityRow(system, source, kind, when,
                                                        ref_object, rid, details or {}, pid)
        return out


def _written_row(system: str, object_name: str, remote_id: str, values: dict[str, Any],
                 now: datetime, at: str) -> dict[str, Any]:
    """A mirror row holding only what the agent wrote (for a record not mirrored yet), its
    marks saying so."""
    return {"system": system, "object": object_name, "remote_id": remote_id,
            "fields": dict(values), "modstamp": None, "deleted": False, "last_seen_at": now,
            "email_key": None, "created_at": None,
            "agent_written": {name: {"value": value, "at": at} for name, value in values.items()}}


def _mergeable(values: dict[str, Any]) -> bool:
    """Values the database can merge into the stored JSON itself: no blank (SQLite's
    json_patch would drop the key instead of holding null) and no object or list (it would
    merge into the old one instead of replacing it)."""
    return all(value is not None and not isinstance(value, dict | list)
               for value in values.values())


def _merge_written(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert the records the mirror has not seen, and merge the written values into the
    fields and marks of those it has, inside the database: nothing is read back, decoded,
    merged and encoded again here (a backfill writes to every person's records)."""
    if not rows:
        return
    table = table_of(m.MirrorRecord)
    stmt = insert_of(session, table)
    new = stmt.excluded
    fields: Any
    marks: Any
    if session.get_bind().dialect.name == "postgresql":
        fields, marks = (table.c.fields.op("||")(new.fields),
                         table.c.agent_written.op("||")(new.agent_written))
    else:
        fields, marks = (func.json_patch(table.c.fields, new.fields),
                         func.json_patch(table.c.agent_written, new.agent_written))
    stmt = stmt.on_conflict_do_update(index_elements=list(RECORD_KEY),
                                      set_={"fields": fields, "agent_written": marks})
    for chunk in chunks(rows):
        session.execute(stmt, list(chunk))


def _merge_in_python(session: Session, system: str, object_name: str,
                     rows: list[dict[str, Any]]) -> None:
    """``_merge_written`` for values the database cannot merge as we mean (blanks, objects):
    read, merge here, write back."""
    if not rows:
        return
    existing = _fields_and_marks(session, system, object_name, [r["remote_id"] for r in rows])
    updates, inserts = [], []
    for row in rows:
        if row["remote_id"] in existing:
            fields, written = existing[row["remote_id"]]
            updates.append({"rid": row["remote_id"], "new_fields": {**fields, **row["fields"]},
                            "new_written": {**(written or {}), **row["agent_written"]}})
        else:
            inserts.append(row)
    _update_written(session, system, object_name, updates)
    insert_ignore(session, table_of(m.MirrorRecord), inserts, RECORD_KEY)


def _fields_and_marks(session: Session, system: str, object_name: str,
                      ids: list[str]) -> dict[str, tuple[dict[str, Any], Any]]:
    t, dialect = table_of(m.MirrorRecord), session.get_bind().dialect.name
    query = select(t.c.remote_id, t.c.fields, t.c.agent_written).where(
        t.c.system == system, t.c.object == object_name, one_of(dialect, t.c.remote_id))
    return {rid: (fields, written) for rid, fields, written in session.execute(
        query, {"ids": listed(dialect, ids)})}


def _update_written(session: Session, system: str, object_name: str,
                    updates: list[dict[str, Any]]) -> None:
    t = table_of(m.MirrorRecord)
    stmt = (update(t).where(t.c.system == system, t.c.object == object_name,
                            t.c.remote_id == bindparam("rid"))
            .values(fields=bindparam("new_fields"), agent_written=bindparam("new_written")))
    for chunk in chunks(updates):
        session.connection().execute(stmt, list(chunk))
