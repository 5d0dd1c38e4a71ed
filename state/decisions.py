"""The latest decision per person: grade, score, segment, stage, owner, track and reasons.

Decisions are written only by `StateStore.commit_evaluation`, together with the outbox rows
planned from them (`save`); `DecisionStore` reads them back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, case, cast, func, literal_column, null, select
from sqlalchemy.orm import Session

from state import models as m
from state.common import IN_LIST, Sessions, chunks, table_of, upsert
from state.db import column_reader, driver_rows, listed, once_each, one_of

COLUMNS = ("grade", "score", "segment", "stage", "owner", "track", "mql_date", "reasons",
           "evaluated_at")


def save(session: Session, decisions: Sequence[dict[str, Any]]) -> None:
    """Upsert decisions by person id (each a dict of `person_id` and the COLUMNS)."""
    upsert(session, table_of(m.Decision), decisions, ["person_id"], COLUMNS)


class DecisionStore:
    """Reads of the stored decisions."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def of(self, person_ids: Iterable[int] | None = None) -> dict[int, dict[str, Any]]:
        """person id -> its decision as a dict of columns (every person's when `None`)."""
        query = select(m.Decision)
        with self._sessions.read() as session:
            if person_ids is None:
                rows = list(session.scalars(query))
            else:
                rows = [r for chunk in chunks(list(person_ids), IN_LIST)
                        for r in session.scalars(query.where(m.Decision.person_id.in_(chunk)))]
        columns = table_of(m.Decision).columns
        return {r.person_id: {c.name: getattr(r, c.name) for c in columns} for r in rows}

    def before(self, person_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """person id -> its stored decision as a new evaluation of it needs it: every column,
        with ``reasons`` cut to the engine's carried ``state`` (all that is read of them).

        The database takes the state out of the stored reasons (~2.6 KB of JSON a person,
        ~10 KB once parsed, read for a small part): only the state is sent and decoded. The
        chunk's ids are one parameter (db.one_of), the rows the driver's own tuples
        (db.driver_rows), the two times converted as SQLAlchemy converts them."""
        ids = sorted(set(person_ids))
        if not ids:
            return {}
        dialect = self._sessions.dialect
        state_of = _sqlite_state if dialect == "sqlite" else _postgres_state
        out: dict[int, dict[str, Any]] = {}
        odd: list[int] = []   # a state SQLite gives back as a scalar: read whole (never seen)
        # Each distinct state text is decoded once and each distinct time converted once: a
        # rescore evaluated every person at one moment, and persons of one owner and stage
        # carry equal states. Only read (EngineState.from_dict), so they may share one value.
        decode = once_each(json.loads)
        with self._sessions.read() as session:
            moment = once_each(column_reader(session.get_bind().dialect,
                                             table_of(m.Decision).c.evaluated_at))
            for (pid, grade, score, segment, stage, owner, track, mql_date, kind, state,
                 evaluated_at) in driver_rows(session, _before_query(dialect),
                                              {"ids": listed(dialect, ids)}):
                reasons = state_of(kind, state, decode)
                if reasons is None:
                    odd.append(pid)
                out[pid] = {"person_id": pid, "grade": grade, "score": score,
                            "segment": segment, "stage": stage, "owner": owner,
                            "track": track, "mql_date": moment(mql_date), "reasons": reasons,
                            "evaluated_at": moment(evaluated_at)}
            for pid, reasons in _whole_states(session, odd).items():
                out[pid]["reasons"] = reasons
        return out


@cache
def _before_query(dialect: str) -> Select[Any]:
    """The decision's columns in table order, its reasons as two columns: what the state is
    (None: no state) and the state itself (`_sqlite_state`, `_postgres_state`)."""
    t = table_of(m.Decision)
    kind: ColumnElement[Any]
    state: ColumnElement[Any]
    if dialect == "postgresql":
        # jsonb: NULL when there is no state, else its JSON text ('null' for a JSON null)
        kind = null()
        state = cast(t.c.reasons.op("->")(literal_column("'state'")), Text)
    else:
        # json_type: NULL when there is no state; json_extract: an object or array's JSON
        # text, a scalar's SQL value (which `_sqlite_state` leaves to `_whole_states`).
        # Text SQLite's strict parser refuses ('malformed JSON'), which Python's json read
        # (a NaN written by json.dumps' defaults before the store's own serializer), is
        # left to `_whole_states` too: SQLite's error would stop every cycle that reads it.
        valid = func.json_valid(t.c.reasons) == 1
        kind = case((valid, func.json_type(t.c.reasons, "$.state")),
                    (t.c.reasons.is_(None), None), else_=literal_column("'invalid'"))
        state = case((valid, func.json_extract(t.c.reasons, "$.state")))
    return select(t.c.person_id, t.c.grade, t.c.score, t.c.segment, t.c.stage, t.c.owner,
                  t.c.track, t.c.mql_date, kind, state, t.c.evaluated_at).where(
        one_of(dialect, t.c.person_id))


def _sqlite_state(kind: str | None, state: Any, decode: Callable[[str], Any]
                  ) -> dict[str, Any] | None:
    """The cut reasons from SQLite's two columns; None for a scalar state, whose SQL value
    may not be what decoding the stored JSON gives (true reads 1, a real SQLite's parse),
    and for reasons SQLite cannot parse (kind 'invalid')."""
    if kind is None:
        return {}
    if kind == "object" or kind == "array":
        return {"state": decode(state)}
    if kind == "null":
        return {"state": None}
    return None


def _postgres_state(_kind: None, state: str | None, decode: Callable[[str], Any]
                    ) -> dict[str, Any]:
    """The cut reasons from the state's JSON text, as the server renders it (the text that
    psycopg would have decoded, within the whole reasons)."""
    return {} if state is None else {"state": decode(state)}


def _whole_states(session: Session, person_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The cut reasons of these persons, decoded from the whole stored reasons."""
    t = table_of(m.Decision)
    out: dict[int, dict[str, Any]] = {}
    for chunk in chunks(list(person_ids), IN_LIST):
        for pid, reasons in session.execute(select(t.c.person_id, t.c.reasons).where(
                t.c.person_id.in_(chunk))):
            reasons = reasons or {}
            out[pid] = {"state": reasons["state"]} if "state" in reasons else {}
    return out
