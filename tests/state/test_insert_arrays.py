"""Postgres takes a chunk of an INSERT as one statement of arrays (state/arrays.py): the same
rows, ids, conflicts and refusals as the row-by-row executemany that SQLite still runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import psycopg

from state import models as m
from state.arrays import array_sql, repeats, uniform
from state.common import insert_ignore, table_of, upsert
from state.sanitise import dumps
from state.store import StateStore

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _row(key: str, fields: Any, **extra: Any) -> dict[str, Any]:
    return {"system": "hubspot", "object": "contacts", "operation": "create",
            "remote_id": None, "person_id": 1, "fields": fields, "idempotency_key": key,
            "status": "pending", "attempts": 0, "next_attempt_at": T0, "created_at": T0,
            "updated_at": T0, **extra}


def _executes(store: StateStore) -> list[bool]:
    """executemany or not, for each statement the store's driver runs from now on."""
    seen: list[bool] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _seen(_c: Any, _cur: Any, _sql: str, _p: Any, _ctx: Any, many: bool) -> None:
        seen.append(many)

    return seen


def _outbox(store: StateStore) -> list[tuple[Any, ...]]:
    t = table_of(m.OutboxRow)
    with store.sessions.read() as session:
        return [tuple(r) for r in session.execute(
            select(t.c.id, t.c.idempotency_key, t.c.fields).order_by(t.c.id))]


def test_a_chunk_is_one_statement_on_postgres(store: StateStore) -> None:
    seen = _executes(store)
    rows = [_row(f"k{n}", dumps({"n": n}).encode() if n % 2 else {"n": n}) for n in range(7)]
    rows[3]["fields"] = None   # JSON null among encoded and plain values
    with store.sessions.write() as session:
        insert_ignore(session, table_of(m.OutboxRow), rows, ["idempotency_key"])
    assert seen == ([False] if store.dialect == "postgresql" else [True])
    assert [(key, fields) for _, key, fields in _outbox(store)] == [
        (f"k{n}", None if n == 3 else {"n": n}) for n in range(7)]


def test_a_key_twice_in_a_chunk_keeps_the_first_and_uses_up_an_id(store: StateStore) -> None:
    rows = [_row("a", {"v": 1}), _row("b", {"v": 2}), _row("a", {"v": 3}), _row("c", {})]
    with store.sessions.write() as session:
        insert_ignore(session, table_of(m.OutboxRow), rows, ["idempotency_key"])
    stored = _outbox(store)
    assert [(key, fields) for _, key, fields in stored] == [
        ("a", {"v": 1}), ("b", {"v": 2}), ("c", {})]
    if store.dialect == "postgresql":   # the ignored row took a sequence value, as before
        assert [i for i, _, _ in stored] == [1, 2, 4]


def test_an_upsert_with_a_key_twice_in_a_chunk_takes_the_last(store: StateStore) -> None:
    """ON CONFLICT DO UPDATE cannot touch a row twice in one statement: such a chunk goes
    row by row, as before, and the later row wins."""
    rows = [_row("a", {"v": 1}), _row("a", {"v": 2}), _row("b", {"v": 3})]
    t = table_of(m.OutboxRow)
    with store.sessions.write() as session:
        upsert(session, t, rows, ["idempotency_key"], ["fields"])
    assert [(key, fields) for _, key, fields in _outbox(store)] == [
        ("a", {"v": 2}), ("b", {"v": 3})]


def test_a_column_of_ints_and_floats_is_stored_as_given(store: StateStore) -> None:
    """The driver types an array by its first value: a column of two kinds goes row by row."""
    rows: list[dict[str, Any]] = [
        {"person_id": n, "score": score, "reasons": {}, "evaluated_at": T0}
        for n, score in enumerate([1, 2.5, None, 10**12])]
    t = table_of(m.Decision)
    with store.sessions.write() as session:
        upsert(session, t, rows, ["person_id"], ["score"])
    with store.sessions.read() as session:
        assert list(session.scalars(select(t.c.score).order_by(t.c.person_id))) == [
            1, 2.5, None, 1e12]
    with store.sessions.write() as session:
        upsert(session, t, [{**r, "score": 7} for r in rows], ["person_id"], ["score"])
    with store.sessions.read() as session:
        assert list(session.scalars(select(t.c.score).order_by(t.c.person_id))) == [7] * 4


@pytest.mark.postgres
def test_a_text_too_long_for_its_column_is_refused_not_cut(postgres_url: str) -> None:
    """The arrays are cast to the type without its length: an explicit cast to VARCHAR(16)
    would cut the text; the column's own cast refuses it, as the row by row insert did."""
    store = StateStore(postgres_url)
    store.upgrade()
    try:
        rows = [_row("a", {}), _row("b", {}, system="x" * 17)]
        with pytest.raises(Exception, match=r"(?i)too long|state DB"), \
                store.sessions.write() as session:
            insert_ignore(session, table_of(m.OutboxRow), rows, ["idempotency_key"])
        assert _outbox(store) == []
    finally:
        store.dispose()


def _compiled(stmt: Any, keys: list[str]) -> tuple[str, dict[str, str]]:
    dialect = psycopg.dialect()
    compiled = stmt.compile(dialect=dialect, column_keys=keys, for_executemany=True)
    types = {name: "TEXT" for name in keys}
    return compiled.string, types


def test_the_sql_of_arrays() -> None:
    t = table_of(m.StageHistory)
    sql, types = _compiled(postgresql.insert(t).values(cause="rule"), ["key", "person_id"])
    assert array_sql(sql, types) == (
        "INSERT INTO stage_history (key, person_id, cause, detail) SELECT v.c0::VARCHAR, "
        "v.c1::BIGINT, %(cause)s::VARCHAR, %(detail)s::JSONB FROM unnest(%(key)b::TEXT[], "
        "%(person_id)b::TEXT[]) AS v(c0, c1)")
    returning = postgresql.insert(t).returning(t.c.id)
    assert array_sql(*_compiled(returning, ["key"])) is None


def test_what_sends_a_chunk_row_by_row() -> None:
    assert uniform([1, None, 2]) and uniform([]) and not uniform([1, 2.5])
    assert repeats([[1, 2, 1]]) and not repeats([[1, 2, 3]])
    assert repeats([[1, 1], ["a", "a"]]) and not repeats([[1, 1], ["a", "b"]])


def test_due_times_of_a_chunk_as_two_arrays(store: StateStore) -> None:
    """persons.set_evaluated: on Postgres the ids and times go as two binary arrays (small
    and large ids, no time at all, a time in another zone); a naive time is refused."""
    from datetime import timedelta, timezone

    from state.persons import set_evaluated

    ids = store.persons.create(["a", "b", "c"], T0)
    east = T0.astimezone(timezone(timedelta(hours=5)))
    with store.sessions.write() as session:
        set_evaluated(session, {ids[0]: None, ids[1]: east, ids[2]: T0})
    t = table_of(m.Person)
    with store.sessions.read() as session:
        assert session.execute(select(t.c.dirty, t.c.due_at).order_by(t.c.id)).all() == [
            (False, None), (False, T0), (False, T0)]
    with pytest.raises(ValueError, match="naive"), store.sessions.write() as session:
        set_evaluated(session, {ids[0]: T0.replace(tzinfo=None)})


def test_values_the_database_refuses_are_cleaned_in_the_arrays_too(store: StateStore) -> None:
    """A NUL, a lone surrogate or a NaN in a text or JSON value of a chunk (the worst remote
    data) is cleaned on its way into the arrays, as it was row by row: one bad value never
    fails the chunk's one statement."""
    seen = _executes(store)
    rows = [_row(f"k{n}", {"t": "a\x00b", "s": "x\udfff", "n": float("nan")},
                 remote_id=f"id\x00{n}", last_error="VP \ud800 Sales") for n in range(3)]
    with store.sessions.write() as session:
        insert_ignore(session, table_of(m.OutboxRow), rows, ["idempotency_key"])
    assert seen == ([False] if store.dialect == "postgresql" else [True])
    t = table_of(m.OutboxRow)
    with store.sessions.read() as session:
        stored = list(session.execute(select(t.c.remote_id, t.c.fields, t.c.last_error)
                                      .order_by(t.c.id)))
    assert [tuple(r) for r in stored] == [
        (f"id{n}", {"t": "ab", "s": "x\ufffd", "n": None}, "VP \ufffd Sales") for n in range(3)]


def test_a_column_that_is_an_array_is_not_read_from_unnest() -> None:
    """unnest spreads a column of arrays over the rows' items (or refuses arrays of two
    lengths): an INSERT with an ARRAY column is left to the row by row path."""
    t = table_of(m.StageHistory)
    sql, types = _compiled(postgresql.insert(t), ["key", "person_id"])
    assert array_sql(sql, types) is not None
    assert array_sql(sql, {**types, "key": "VARCHAR[]"}) is None


@pytest.mark.postgres
def test_rows_with_an_array_column_are_stored_as_given(postgres_url: str) -> None:
    from sqlalchemy import ARRAY, BigInteger, Column, MetaData, Table, Text

    store = StateStore(postgres_url)
    tags = Table("tagged", MetaData(), Column("id", BigInteger, primary_key=True),
                 Column("tags", ARRAY(Text)))
    try:
        tags.create(store.engine)
        rows = [{"id": 1, "tags": ["a", "b"]}, {"id": 2, "tags": ["c", "d"]},
                {"id": 3, "tags": ["e"]}, {"id": 4, "tags": None}]
        with store.sessions.write() as session:
            insert_ignore(session, tags, rows, ["id"])
        with store.sessions.read() as session:
            assert [dict(r._mapping) for r in session.execute(
                select(tags).order_by(tags.c.id))] == rows
    finally:
        store.dispose()


def test_a_chunk_past_chunk_rows_one_statement_then_row_by_row(store: StateStore) -> None:
    """Rows past a chunk's size are another chunk, judged on its own: the first part, of
    one kind, goes in one statement (Postgres), the later part, of two kinds, row by row;
    every row lands as given."""
    from state.common import CHUNK_ROWS

    seen = _executes(store)
    scores: list[Any] = [*range(CHUNK_ROWS), 5, 6.5, None]
    rows = [{"person_id": n, "score": score, "reasons": {"n": n}, "evaluated_at": T0}
            for n, score in enumerate(scores)]
    t = table_of(m.Decision)
    with store.sessions.write() as session:
        upsert(session, t, rows, ["person_id"], ["score"])
    assert seen == ([False, True] if store.dialect == "postgresql" else [True, True])
    with store.sessions.read() as session:
        assert [tuple(r) for r in session.execute(
            select(t.c.person_id, t.c.score, t.c.reasons).order_by(t.c.person_id))] == [
            (n, score, {"n": n}) for n, score in enumerate(scores)]
