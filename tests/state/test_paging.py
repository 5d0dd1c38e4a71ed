"""The pages a cycle reads persons and queued records in: every due person exactly once, in
id order, however the due reasons overlap or repeat (on SQLite and Postgres)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from state.handoff import FIRED, PENDING, HandoffRows, TimerRow
from state.store import CursorState, MirrorRow, StateStore

T0 = datetime(2026, 11, 1, tzinfo=UTC)
KINDS = ("remind", "escalate", "reassign")


def _steps(pid: int, due: datetime, status: str = PENDING) -> list[TimerRow]:
    return [TimerRow(f"sla:{pid}:{kind}", pid, kind, T0, due, "005A", status)
            for kind in KINDS]


def _pages(store: StateStore, now: datetime, size: int) -> list[list[int]]:
    pages, after = [], 0
    while page := store.persons.due_page(now, after, size):
        pages.append(page)
        after = page[-1]
    return pages


def test_due_pages_hold_every_due_person_once_when_timer_steps_repeat_a_person(
    store: StateStore,
) -> None:
    """Worst case for a limited union: the lowest ids are due only through several timer
    steps each, the next only through their dirty flag; a page of two must skip nobody."""
    ids = store.persons.create([f"p{i}@acme.com" for i in range(12)], now=T0)
    store.persons.evaluated(dict.fromkeys(ids))            # nobody dirty, nothing due
    timed, dirty, later = ids[:4], ids[6:9], ids[10]
    steps = [s for pid in timed for s in _steps(pid, T0)]
    steps += _steps(later, T0 + timedelta(days=3))          # pending, not due yet
    steps += _steps(ids[4], T0, status=FIRED)               # fired: not due again
    store.commit_evaluation([], [], {}, {}, handoff=HandoffRows(timers=steps))
    store.persons.mark_dirty(dirty)
    store.persons.evaluated({ids[9]: T0 - timedelta(hours=1)})   # its decay came due
    pages = _pages(store, T0, 2)
    assert all(len(page) <= 2 for page in pages)
    assert [pid for page in pages for pid in page] == sorted([*timed, *dirty, ids[9]])


def test_queued_ids_page_through_one_object_in_id_order(store: StateStore) -> None:
    rows = [MirrorRow("salesforce", "Lead", f"00Q{i:03d}", {"Email": f"p{i}@acme.com"}, T0)
            for i in range(7)]
    rows.append(MirrorRow("hubspot", "contacts", "501", {"email": "x@acme.com"}, T0))
    store.commit_page("t", rows, [], CursorState())
    assert sorted(store.persons.queued_objects()) == [("hubspot", "contacts"),
                                                      ("salesforce", "Lead")]
    seen, after = [], None
    while ids := store.persons.queued_ids("salesforce", "Lead", after, 3):
        seen += ids
        after = ids[-1]
    assert seen == [f"00Q{i:03d}" for i in range(7)]

