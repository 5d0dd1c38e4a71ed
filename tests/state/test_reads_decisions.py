"""`DecisionStore.before`: the stored decisions as a new evaluation reads them, the reasons cut
to their ``state`` by the database. Whatever the stored reasons hold (no state, a JSON null,
an object with the floats, integers and strings JSON round-trips worst, a scalar state that
SQLite's JSON functions would give back as something else), the cut reasons equal what
decoding the whole stored reasons gives, on SQLite and on Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from state import decisions
from state import models as m
from state.common import IN_LIST, table_of
from state.dberrors import StateRefused
from state.store import StateStore

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
WORST_OBJECT = {"decay": 0.1 + 0.2, "tiny": 1e-300, "big": 2 ** 70, "neg": -0.0,
                "text": "é😀 \"quoted\" \\ \n\t \u2028", "nested": [{"a": [None, True, False]}],
                "empty": {}, "none": None}
STATES: list[Any] = [WORST_OBJECT, None, [], [1, 2.5, "x"], True, False, "a \"string\"",
                     0.1 + 0.2, 2 ** 62, 1.7976931348623157e308]


def _decision(pid: int, reasons: Any) -> dict[str, Any]:
    return {"person_id": pid, "grade": "A1", "score": 12.5 + pid, "segment": "smb",
            "stage": "MQL", "owner": "005x", "track": None,
            "mql_date": T0 if pid % 2 else None, "reasons": reasons,
            "evaluated_at": T0 + timedelta(seconds=pid)}


def _whole(store: StateStore, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The reference: every column read by SQLAlchemy, the reasons decoded whole and cut."""
    t = table_of(m.Decision)
    out: dict[int, dict[str, Any]] = {}
    with store.sessions.read() as session:
        for row in session.execute(select(t).where(t.c.person_id.in_(ids))):
            values = row._asdict()
            reasons = values.get("reasons") or {}
            values["reasons"] = {"state": reasons["state"]} if "state" in reasons else {}
            out[values["person_id"]] = values
    return out


def _save(store: StateStore, rows: list[dict[str, Any]]) -> None:
    with store.sessions.write() as session:
        decisions.save(session, rows)


def test_the_cut_reasons_equal_the_whole_reasons_cut(store: StateStore) -> None:
    reasons: list[Any] = [{"state": state, "reasons_text": "x" * 50} for state in STATES]
    reasons += [{}, {"reasons_text": "no state"}, None, {"State": 1, "state ": 2}]
    rows = [_decision(pid, r) for pid, r in enumerate(reasons, start=1)]
    _save(store, rows)
    ids = [row["person_id"] for row in rows]
    got = store.decisions.before([*ids, 999, ids[0]])   # unknown and repeated ids
    want = _whole(store, ids)
    assert got == want
    assert [list(got[pid]) for pid in ids] == [list(want[pid]) for pid in ids], "column order"
    for pid in ids:   # equal, and of the same types (True is not 1, 2**62 not a float)
        assert repr(got[pid]["reasons"]) == repr(want[pid]["reasons"])
        assert got[pid]["evaluated_at"].tzinfo is UTC


def test_more_persons_than_an_in_list_and_none(store: StateStore) -> None:
    rows = [_decision(pid, {"state": {"n": pid}}) for pid in range(1, 2 * IN_LIST + 8)]
    _save(store, rows)
    got = store.decisions.before(range(2 * IN_LIST + 20))
    assert got == _whole(store, [row["person_id"] for row in rows])
    assert store.decisions.before([]) == {}
    assert store.decisions.before(iter([])) == {}


def test_reasons_the_database_cannot_parse_are_read_as_python_reads_them(
        store: StateStore) -> None:
    """A decision stored as text SQLite's JSON functions refuse but Python's json reads (a
    NaN, as json.dumps' defaults wrote it before the store had its own serializer): its
    state is read, not a 'malformed JSON' error taken for a damaged database."""
    _save(store, [_decision(1, {"state": {"stage": "MQL"}}), _decision(2, {"state": None}),
                  _decision(3, None)])
    legacy = ("UPDATE decisions SET reasons = '{\"state\": {\"stage\": \"SAL\", "
              "\"decay\": NaN}, \"score\": Infinity}' WHERE person_id = 2")
    if store.dialect == "postgresql":   # jsonb refuses the text itself: nothing to read
        with pytest.raises(StateRefused, match="InvalidTextRepresentation"), \
                store.engine.begin() as connection:
            connection.exec_driver_sql(legacy)
        return
    with store.engine.begin() as connection:
        connection.exec_driver_sql(legacy)
    got = store.decisions.before([1, 2, 3])
    assert got == _whole(store, [1, 2, 3])
    assert got[2]["reasons"]["state"]["stage"] == "SAL" and got[3]["reasons"] == {}
