"""`execute_rows` (the bulk writes' one-pass parameter binding) stores exactly what
SQLAlchemy's own executemany stores, on both backends: the same text of every JSON value and
timestamp, the same cleaning of refused text, the same errors, the same column defaults."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import pytest
from sqlalchemy import delete, literal_column, select

from state import models as m
from state.common import execute_rows, insert_of, table_of
from state.sanitise import REPLACEMENT
from state.store import StateStore

T0 = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


def _outbox_rows() -> list[dict[str, Any]]:
    east = T0.astimezone(timezone(timedelta(hours=5)))   # stored as UTC
    return [{"system": "hubspot", "object": "contacts", "operation": "update",
             "remote_id": rid, "person_id": n, "fields": fields,
             "idempotency_key": f"k{n}", "status": "pending", "attempts": 0,
             "next_attempt_at": T0 + timedelta(microseconds=n), "created_at": east,
             "updated_at": T0, "changed_at": None if n % 2 else T0}
            for n, (rid, fields) in enumerate([
                ("plain", {"b": 1, "a": [1.5, None, "x"]}),
                ("nul\x00inside", {"text": "nul\x00inside", "z": {"y": True}}),
                ("lone\ud800surrogate", {"k": "é ü 中"}),
                (None, None),                      # a JSON column given None
                ("big", {"n": 10**20, "f": 1e-300, "s": "x" * 20_000}),
            ])]


def _stored(store: StateStore) -> list[tuple[Any, ...]]:
    """Every outbox row as the driver returns it (raw text on SQLite: JSON and timestamps)."""
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.exec_driver_sql(
            "SELECT system, object, operation, remote_id, person_id, fields, "
            "idempotency_key, status, attempts, next_attempt_at, created_at, updated_at, "
            "changed_at FROM outbox ORDER BY idempotency_key")]


def test_rows_are_stored_exactly_as_sqlalchemy_stores_them(store: StateStore) -> None:
    table = table_of(m.OutboxRow)
    rows = _outbox_rows()
    with store.sessions.write() as session:
        session.execute(insert_of(session, table), rows)
    expected = _stored(store)
    with store.sessions.write() as session:
        session.execute(delete(table))
        execute_rows(session, insert_of(session, table), rows)
    assert _stored(store) == expected
    remote_ids = [row[3] for row in expected]
    assert "\x00" not in "".join(r for r in remote_ids if r)   # cleaned on the way in


def test_an_upsert_with_a_condition_binds_its_own_constants(store: StateStore) -> None:
    table = table_of(m.OutboxRow)
    rows = _outbox_rows()
    with store.sessions.write() as session:
        execute_rows(session, insert_of(session, table), rows)
        session.execute(table.update().where(table.c.idempotency_key == "k0")
                        .values(status="in_flight"))
    changed = [{**row, "fields": {"new": row["person_id"]}} for row in rows]
    with store.sessions.write() as session:
        stmt = insert_of(session, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["idempotency_key"], set_={"fields": stmt.excluded.fields},
            where=table.c.status == "pending")
        execute_rows(session, stmt, changed)
    with store.sessions.read() as session:
        fields = dict(session.execute(select(table.c.idempotency_key, table.c.fields)).all())
    assert fields["k0"] == {"b": 1, "a": [1.5, None, "x"]}   # in flight: left as it was
    assert all(fields[f"k{n}"] == {"new": n} for n in range(1, len(rows)))


def test_a_naive_datetime_is_refused_as_before(store: StateStore) -> None:
    rows = _outbox_rows()[:1]
    rows[0]["updated_at"] = datetime(2026, 1, 1)   # naive: the failure under test
    with pytest.raises(ValueError, match="naive datetime"), store.sessions.write() as session:
        execute_rows(session, insert_of(session, table_of(m.OutboxRow)), rows)


def test_a_column_default_the_rows_leave_out_is_still_filled_in(store: StateStore) -> None:
    table = table_of(m.Person)
    with store.sessions.write() as session:
        execute_rows(session, insert_of(session, table),
                     [{"email_key": f"p{n}@example.org", "created_at": T0, "due_at": None}
                      for n in range(3)])
    with store.sessions.read() as session:
        assert list(session.scalars(select(table.c.dirty))) == [True, True, True]


class _Kind(StrEnum):
    BAD = "status\x00with nul"


def test_every_text_column_is_cleaned_in_any_row_whatever_its_kind(store: StateStore) -> None:
    """The driver's parameters are not cleaned again after execute_rows: a NUL or a lone
    surrogate in any text column of any row (the last of a chunk, a str subclass, beside
    other kinds) must be cleaned there, and a JSON value by its serializer."""
    rows = [{**_outbox_rows()[0], "idempotency_key": f"k{n}"} for n in range(5_001)]
    rows[-1] = {**rows[-1], "remote_id": "last\x00row", "status": _Kind.BAD,
                "object": "lone \udc00", "fields": {"k\x00": "\ud800"}}
    with store.sessions.write() as session:
        execute_rows(session, insert_of(session, table_of(m.OutboxRow)), rows)
    with store.engine.connect() as connection:
        stored = connection.exec_driver_sql(
            "SELECT remote_id, status, object, fields FROM outbox "
            "WHERE idempotency_key = 'k5000'").one()
    assert stored[:3] == ("lastrow", "statuswith nul", f"lone {REPLACEMENT}")
    fields = stored[3] if isinstance(stored[3], dict) else json.loads(stored[3])
    assert fields == {"k": REPLACEMENT}


def test_a_constant_of_the_statement_is_cleaned_too(store: StateStore) -> None:
    rows = _outbox_rows()[:2]
    with store.sessions.write() as session:
        execute_rows(session, insert_of(session, table_of(m.OutboxRow))
                     .values(last_error="nul\x00 and \udfff"), rows)
    with store.sessions.read() as session:
        assert set(session.scalars(select(table_of(m.OutboxRow).c.last_error))) == {
            f"nul and {REPLACEMENT}"}


def test_percent_signs_of_the_sql_are_not_taken_for_parameters(store: StateStore) -> None:
    """On Postgres the named parameters become positional ones: a literal percent sign, even
    one followed by what could pass for a parameter, stays text."""
    text = "100% (%s) sure %%"
    if store.dialect == "postgresql":   # (SQLAlchemy's own SQLite SQL would take it for one)
        text += " %(remote_id)s"
    table = table_of(m.OutboxRow)
    for _ in range(2):   # the second time, every row takes the conflict's update
        with store.sessions.write() as session:
            stmt = insert_of(session, table)
            stmt = stmt.on_conflict_do_update(
                index_elements=["idempotency_key"],
                set_={"last_error": literal_column(f"'{text}'"),
                      "remote_id": stmt.excluded.remote_id})
            execute_rows(session, stmt, _outbox_rows())
    with store.sessions.read() as session:
        stored = session.execute(select(table.c.last_error, table.c.remote_id)).all()
    assert {error for error, _ in stored} == {text}
    assert {remote_id for _, remote_id in stored} == {
        "plain", "nulinside", f"lone{REPLACEMENT}surrogate", None, "big"}


def test_one_moment_in_several_zones_and_a_naive_one_among_many(store: StateStore) -> None:
    """Each distinct moment of a column is turned into text once: equal moments in two zones
    still store the same UTC moment, and a naive one among a thousand equal aware ones is
    still refused."""
    east = T0.astimezone(timezone(timedelta(hours=-7)))
    rows = [{**_outbox_rows()[0], "idempotency_key": f"k{n}",
             "created_at": east if n % 2 else T0} for n in range(10)]
    with store.sessions.write() as session:
        execute_rows(session, insert_of(session, table_of(m.OutboxRow)), rows)
    with store.sessions.read() as session:
        assert set(session.scalars(select(table_of(m.OutboxRow).c.created_at))) == {T0}
    rows = [{**row, "idempotency_key": f"n{n}"} for n, row in enumerate(rows * 100)]
    rows[500] = {**rows[500], "created_at": T0.replace(tzinfo=None)}
    with pytest.raises(ValueError, match="naive datetime"), store.sessions.write() as session:
        execute_rows(session, insert_of(session, table_of(m.OutboxRow)), rows)


def test_a_statement_not_bound_here_is_still_cleaned_on_its_way(store: StateStore) -> None:
    """Only execute_rows' own statements skip the driver-side cleaning."""
    with store.sessions.write() as session:
        session.execute(insert_of(session, table_of(m.OutboxRow)),
                        [{**_outbox_rows()[0], "remote_id": "a\x00b"}])
    with store.sessions.read() as session:
        assert session.scalar(select(table_of(m.OutboxRow).c.remote_id)) == "ab"
