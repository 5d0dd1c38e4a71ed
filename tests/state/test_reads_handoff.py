"""The reads a chunk's handoff makes (stored timer steps, task keys already given) and the
open data-quality keys its plans read, each with its ids or keys bound as ONE parameter
(state/db.one_of): equal to what the ORM reads, for the worst keys and details (NUL, unicode,
quotes, SQL and JSON syntax, more than an IN list took, none at all), on SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from state import models as m
from state.common import IN_LIST
from state.flags import Flag
from state.handoff import FIRED, PENDING, HandoffRows, TaskRecord, TimerRow
from state.store import StateStore

T0 = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
ODD = ["é😀 ünï", "x'y\"z\\", "%s %(ids)s ?", "a,b", "[\"]\"", " ", "NULL", "K" * 200]
DETAILS = [{}, {"message": "é😀 \"q\" \\ \n", "lead_owner": None},
           {"nested": {"a": [1, 2.5, True]}, "n": 2 ** 62}, {"message": "same"},
           {"message": "same"}]


def _reference(store: StateStore, pids: list[int]) -> dict[int, list[TimerRow]]:
    """What the ORM reads, in the same order (due time, then key)."""
    t = m.SlaTimerRow
    out: dict[int, list[TimerRow]] = {}
    with store.sessions.read() as session:
        for row in session.scalars(select(t).where(t.person_id.in_(pids))
                                   .order_by(t.due_at, t.key)):
            out.setdefault(row.person_id, []).append(TimerRow(
                row.key, row.person_id, row.kind, row.started_at, row.due_at, row.recipient,
                row.status, row.fired_at, dict(row.detail or {})))
    return out


def test_timer_steps_equal_the_orm_reads_whatever_their_details(store: StateStore) -> None:
    pids = store.persons.create([None] * (2 * IN_LIST + 5), now=T0)
    timers = [TimerRow(f"sla:{pid}:{kind}:{ODD[pid % (len(ODD) - 1)]}", pid, kind,
                       T0 + timedelta(microseconds=pid % 3), T0 + timedelta(hours=pid % 5),
                       None if pid % 4 else "005A", FIRED if pid % 6 == 0 else PENDING,
                       T0 + timedelta(hours=1) if pid % 6 == 0 else None,
                       DETAILS[pid % len(DETAILS)])
              for pid in pids for kind in ("remind", "escalate")]
    store.commit_evaluation([], [], {}, {}, now=T0, handoff=HandoffRows(timers=timers))
    got = store.handoff.timers_of([*pids, pids[0], 10 ** 12])   # repeated, unknown
    assert got == _reference(store, pids)
    assert all(t.started_at.tzinfo is UTC and t.due_at.tzinfo is UTC
               for steps in got.values() for t in steps)
    pending = store.handoff.pending_timers(pids)
    assert pending == {pid: [t for t in steps if t.status == PENDING]
                       for pid, steps in got.items() if pid % 6}
    assert store.handoff.timers_of([]) == {} and store.handoff.timers_of(iter(())) == {}


def test_equal_details_are_read_as_dicts_of_their_own(store: StateStore) -> None:
    """Each distinct detail is decoded once: the rows must still not share one dict."""
    first, second = store.persons.create([None, None], now=T0)
    timers = [TimerRow(f"sla:{pid}:remind", pid, "remind", T0, T0, None, PENDING, None,
                       {"message": "same"}) for pid in (first, second)]
    store.commit_evaluation([], [], {}, {}, now=T0, handoff=HandoffRows(timers=timers))
    got = store.handoff.timers_of([first, second])
    got[first][0].detail["message"] = "changed"
    assert got[second][0].detail == {"message": "same"}


def test_task_keys_and_open_flag_keys_are_found_by_the_worst_keys(store: StateStore) -> None:
    (pid,) = store.persons.create([None], now=T0)
    many = [f"task:{n:05d}" for n in range(2 * IN_LIST + 3)]
    tasks = [TaskRecord(key, pid, "alert", "a", "salesforce", None, T0) for key in [*ODD, *many]]
    store.commit_evaluation([], [], {}, {}, now=T0, handoff=HandoffRows(tasks=tasks))
    asked = [*ODD, *many, "K" * 199, "task:", "nul\x00cut"]
    assert store.handoff.existing_task_keys(asked) == {*ODD, *many}
    assert store.handoff.existing_task_keys([]) == set()

    store.flags.many([Flag("ambiguous", key, {"n": 1}) for key in [*ODD, *many, "shut"]],
                     now=T0)
    with store.sessions.write() as session:
        session.execute(m.DataQualityItem.__table__.update()
                        .where(m.DataQualityItem.key == "shut").values(resolved=True))
    assert store.flags.open_keys([*asked, "shut"]) == {*ODD, *many}
    assert store.flags.open_keys(iter(())) == set()
