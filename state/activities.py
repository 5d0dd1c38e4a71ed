"""Reading a chunk's activities for an evaluation (`MirrorStore.activity_tuples`): the
loop runs for every activity of every person (~4 a person), so it does as little per row as
it can: each distinct details text is parsed once, a SQLite time is parsed in one call, and a
record's list is looked up once for its run of rows, not once a row."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Text, bindparam, cast, select

from state import jsontext
from state import models as m
from state.common import Sessions, table_of
from state.db import column_reader, driver_rows, listed, once_each, one_of

#: An activity as `MirrorStore.activity_tuples` reads it: (system, source id, kind,
#: occurred_at, details, person id).
ActivityTuple = tuple[str, str, str, datetime, Any, int | None]

_fromiso = datetime.fromisoformat


def grouped(pairs: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """(group, id) pairs as the set of ids of each group: one chunked query per group."""
    out: dict[str, set[str]] = {}
    for group, rid in pairs:
        out.setdefault(group, set()).add(rid)
    return out


def activity_tuples(sessions: Sessions, refs: Iterable[tuple[str, str]]
                    ) -> dict[tuple[str, str], list[ActivityTuple]]:
    """The activities of these (object, remote id) records, by record, in the order the
    database returns them."""
    t, dialect = table_of(m.Activity), sessions.dialect
    # by object and id: the (ref_object, ref_id) index serves it on both databases
    query = select(t.c.ref_id, t.c.system, t.c.source_id, t.c.kind, t.c.occurred_at,
                   cast(t.c.details, Text), t.c.person_id).where(
        t.c.ref_object == bindparam("object"), one_of(dialect, t.c.ref_id))
    # The details as text, parsed once per distinct text: page views of one page, one
    # form's submissions, one owner's calls repeat the same details (the rows only read
    # them, so equal details may share one dict).
    parsed = once_each(_details)
    out: dict[tuple[str, str], list[ActivityTuple]] = {}
    with sessions.read() as session:
        moment = column_reader(session.get_bind().dialect, t.c.occurred_at)
        if dialect == "sqlite":
            moment = sqlite_utc(moment)
        for object_name, ids in grouped(refs).items():
            rows = driver_rows(session, query, {"object": object_name,
                                                "ids": listed(dialect, sorted(ids))})
            last: Any = None
            bucket: list[ActivityTuple] = []
            for rid, system, source, kind, when, text, pid in rows:
                if rid != last:   # a record's rows come together: one look-up for them
                    last, bucket = rid, out.setdefault((object_name, rid), [])
                bucket.append((system, source, kind, moment(when),
                               parsed(text) if text is not None else {}, pid))
    return out


def sqlite_utc(general: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """SQLite's stored UTC text (``YYYY-MM-DD HH:MM:SS.ffffff``) as an aware datetime in one
    C call, as models.UTCDateTime reads it (`general`, for a text with a zone of its own)."""
    def moment(text: Any) -> Any:
        try:
            return _fromiso(text + "+00:00")
        except (TypeError, ValueError):
            return general(text)
    return moment


def _details(text: str) -> dict[str, Any]:
    return jsontext.loads(text) or {}
