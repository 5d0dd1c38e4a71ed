"""JSON text made ahead of the commit (an evaluation worker's UTF-8, `sanitise.encoded`) is
stored exactly as the value it was made from would be: the same text of every decision's reasons,
outbox payload and handoff detail, on both backends, poison values (NaN, infinity, NUL, lone
surrogates) cleaned once, where the text was made; the value alone is pre-encoded, never a
string that happens to be inside it or a plain string value."""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pytest
from sqlalchemy import delete, insert

from state import models as m
from state.common import as_tuples, table_of
from state.handoff import HandoffRows, StageChange, TaskRecord, TimerRow
from state.sanitise import _SURROGATE, REPLACEMENT, dumps
from state.store import NewOutboxRow, StateStore
from syncagent.pipeline.wire import utf8

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)

WORST: list[Any] = [
    {"score": math.nan, "weights": [math.inf, -math.inf, 1.5], "b": {"z": None, "a": True}},
    {"text": "nul\x00inside", "nu\x00l key": {"deep": ["\x00"]}},
    {"lone": "x\ud800y", "\udc00key": "ok", "pair": "\ud83d\ude00"},
    {"plain": "é ü 中", "n": 10**20, "moment": T0, "t": (1, 2)},
    {"escapes, not characters": "\\u0000 \\ud800 \\udc00 \\u00e9"},
    {},
    [],
    None,
]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [*value, *(s for v in value.values() for s in _strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


class Kind(StrEnum):
    HOT = "hot"


@pytest.mark.parametrize("value", WORST)
def test_encoded_text_is_the_serializers_text_and_is_never_encoded_again(value: Any) -> None:
    text = utf8(value)
    assert type(text) is bytes and text.decode() == dumps(value)
    decoded = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in {text!r}"))
    assert all("\x00" not in s and not _SURROGATE.search(s) for s in _strings(decoded))
    assert dumps(text) == text.decode(), "no second encoding, no second cleaning"
    assert utf8(text) is text


def test_only_the_marker_is_taken_as_text_made_already() -> None:
    """A plain string and a string enum are JSON strings; text made already (bytes) inside a
    value is refused (stored, it would be the string "b'...'")."""
    assert dumps("{}") == '"{}"'
    assert dumps(Kind.HOT) == '"hot"'
    for nested in ({"inner": b'{"a": 1}'}, [b"1"]):
        with pytest.raises(TypeError, match="whole value"):
            dumps(nested)


def test_encoded_text_crosses_a_pickle_as_itself() -> None:
    """What a worker sends (pickle's protocol as workers use it): the marker survives."""
    text = utf8(WORST[0])
    back = pickle.loads(pickle.dumps({"reasons": text}, protocol=pickle.HIGHEST_PROTOCOL))
    assert type(back["reasons"]) is bytes and back["reasons"] == text


def _decisions(pre: bool, made: Callable[[Any], Any] = utf8) -> list[dict[str, Any]]:
    def reasons(value: Any) -> Any:
        return made(value) if pre else value
    return [{"person_id": n + 1, "grade": "A", "score": 10, "segment": None, "stage": "mql",
             "owner": None, "track": None, "mql_date": T0,
             "reasons": reasons(value), "evaluated_at": T0}
            for n, value in enumerate(WORST)]


def _commit(store: StateStore, pre: bool, mixed: bool = False,
            made: Callable[[Any], Any] = utf8) -> None:
    """One chunk's commit: every JSON value pre-encoded (``pre``, by ``made``), none, or
    every other one (``mixed``: a worker's chunk with persons evaluated again in the main
    process)."""
    def json(n: int, value: Any) -> Any:
        return made(value) if pre and (not mixed or n % 2) else value
    rows = [NewOutboxRow("hubspot", "contacts", "update" if n % 3 else "create",
                         json(n, value), f"key{n}", remote_id=f"r{n}", person_id=n + 1)
            for n, value in enumerate(WORST)]
    handoff = HandoffRows(
        history=[StageChange(f"h{n}", n + 1, T0, None, "mql", "rule", None, json(n, v))
                 for n, v in enumerate(WORST)],
        timers=[TimerRow(f"t{n}", n + 1, "first_touch", T0, T0, None, detail=json(n, v))
                for n, v in enumerate(WORST)],
        tasks=[TaskRecord(f"k{n}", n + 1, "alert", "task", None, None, T0, json(n, v))
               for n, v in enumerate(WORST)])
    if made is utf8:   # a worker's rows cross as their tuples: among objects, when mixed
        rows = _sent(rows, NewOutboxRow)
        for name, kind in (("history", StageChange), ("timers", TimerRow),
                           ("tasks", TaskRecord)):
            setattr(handoff, name, _sent(getattr(handoff, name), kind))
    decisions = _decisions(False)
    for n, decision in enumerate(decisions):
        decision["reasons"] = json(n, decision["reasons"])
    store.commit_evaluation(rows, decisions, {}, {}, T0, handoff)


def _sent(rows: list[Any], kind: type) -> list[Any]:
    """Each row with UTF-8 JSON (a worker's) as its tuple (common.as_tuples)."""
    return [as_tuples([row], kind)[0] if bytes in map(type, vars(row).values()) else row
            for row in rows]


def _stored(store: StateStore) -> dict[str, list[Any]]:
    """Every JSON column as the server holds it (jsonb as its text on Postgres)."""
    cast = "::text" if store.dialect == "postgresql" else ""
    queries = {"decisions": f"SELECT person_id, reasons{cast} FROM decisions",
               "outbox": f"SELECT idempotency_key, fields{cast} FROM outbox",
               "stage_history": f"SELECT key, detail{cast} FROM stage_history",
               "sla_timers": f"SELECT key, detail{cast} FROM sla_timers",
               "handoff_tasks": f"SELECT key, detail{cast} FROM handoff_tasks"}
    with store.engine.connect() as connection:
        return {name: sorted(tuple(row) for row in connection.exec_driver_sql(query))
                for name, query in queries.items()}


def _emptied(store: StateStore) -> None:
    with store.sessions.write() as session:
        for model in (m.Decision, m.OutboxRow, m.StageHistory, m.SlaTimerRow, m.HandoffTask):
            session.execute(delete(table_of(model)))


def test_a_commit_stores_encoded_text_as_it_stores_the_values(store: StateStore) -> None:
    _commit(store, pre=False)
    expected = _stored(store)
    texts = str(expected["outbox"])
    assert "\\ufffd" in texts or REPLACEMENT in texts, "a lone surrogate, replaced"
    # as an evaluation worker sends it (UTF-8: wire.as_text)
    for made in (utf8,):
        for mixed in (False, True):
            _emptied(store)
            _commit(store, pre=True, mixed=mixed, made=made)
            assert _stored(store) == expected, f"{made.__name__}, mixed={mixed}"
    before = {pid: d["reasons"] for pid, d in store.decisions.of().items()}
    assert before[1] == {"score": None, "weights": [None, None, 1.5],
                         "b": {"z": None, "a": True}}
    assert before[2] == {"text": "nulinside", "nul key": {"deep": [""]}}


@pytest.mark.parametrize("made", [utf8], ids=["worker"])
def test_any_other_way_of_binding_stores_encoded_text_as_is(
        store: StateStore, made: Callable[[Any], Any]) -> None:
    """SQLAlchemy's own executemany (the ORM's, a statement with Python-side defaults)
    goes through the engine's serializer too: the same text, never a JSON string of it (a
    worker's UTF-8 bytes stored as the string "b'{...}'" before the serializer knew them)."""
    table = table_of(m.Decision)
    with store.sessions.write() as session:
        session.execute(insert(table), _decisions(pre=False))
    expected = _stored(store)["decisions"]
    _emptied(store)
    with store.sessions.write() as session:
        session.execute(insert(table), _decisions(pre=True, made=made))
    assert _stored(store)["decisions"] == expected
