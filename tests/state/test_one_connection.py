"""A pull stores both systems' pages on one connection (StateStore.on_one_connection).

Threads take turns on it; a page and its cursor are still all or nothing; a failed page
leaves the connection usable for the next; and no read holds its snapshot past the call,
so what another connection commits is seen by the next read. Each test runs on SQLite and
on PostgreSQL.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from state.store import ActivityRow, CursorState, MirrorRow, StateStore

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PAGES = 25
ROWS = 40


def _page(system: str, page: int) -> tuple[list[MirrorRow], list[ActivityRow]]:
    records = [MirrorRow(system, "Lead", f"{system}-{page}-{i}", {"Email": f"a{i}@x.io"}, T0)
               for i in range(ROWS)]
    activities = [ActivityRow(system, f"{system}-e{page}-{i}", "page_view", T0, "Lead",
                              f"{system}-{page}-{i}", {"url": "/pricing"}) for i in range(ROWS)]
    return records, activities


def _commit_all(store: StateStore, system: str, failures: list[BaseException]) -> None:
    try:
        for page in range(PAGES):
            records, activities = _page(system, page)
            # a read between the writes, as the echo look-ups do
            store.mirror.activities_by_source([(system, a.source_id) for a in activities])
            store.commit_page(f"{system}.Lead", records, activities,
                              CursorState(T0, str(page)))
    except BaseException as exc:  # handed to the test's thread
        failures.append(exc)


def test_two_systems_committing_at_once_store_every_page_and_cursor(state_url: str
                                                                     ) -> None:
    store = StateStore(state_url)
    store.upgrade()
    failures: list[BaseException] = []
    with store.on_one_connection() as pulling:
        threads = [threading.Thread(target=_commit_all, args=(pulling, system, failures))
                   for system in ("salesforce", "hubspot")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert failures == []
    for system in ("salesforce", "hubspot"):
        assert len(store.mirror.records(system, "Lead")) == PAGES * ROWS
        cursor = store.mirror.cursor(f"{system}.Lead")
        assert cursor is not None and cursor.last_id == str(PAGES - 1)
    assert len(store.persons.queued()) == 2 * PAGES * ROWS
    store.dispose()


def test_a_failed_page_stores_nothing_and_the_next_page_commits(state_url: str) -> None:
    store = StateStore(state_url)
    store.upgrade()
    with store.on_one_connection() as pulling:
        records, activities = _page("hubspot", 0)
        naive = [ActivityRow("hubspot", "bad", "page_view", datetime(2026, 11, 2, 9, 0),
                             "Lead", "hubspot-0-0")]
        with pytest.raises(ValueError, match="naive"):
            pulling.commit_page("hubspot.Lead", records, activities + naive,
                                CursorState(T0, "0"))
        assert pulling.mirror.records("hubspot", "Lead") == []
        assert pulling.mirror.cursor("hubspot.Lead") is None
        pulling.commit_page("hubspot.Lead", records, activities, CursorState(T0, "1"))
    assert len(store.mirror.records("hubspot", "Lead")) == ROWS
    cursor = store.mirror.cursor("hubspot.Lead")
    assert cursor is not None and cursor.last_id == "1"
    store.dispose()


def test_a_read_keeps_no_snapshot_past_its_call(state_url: str) -> None:
    store = StateStore(state_url)
    store.upgrade()
    with store.on_one_connection() as pulling:
        assert pulling.mirror.cursor("salesforce.Lead") is None
        # committed on another connection (the pool's) after that read
        store.commit_page("salesforce.Lead", [], [], CursorState(T0, "7"))
        seen = pulling.mirror.cursor("salesforce.Lead")
        assert seen is not None and seen.last_id == "7"
    store.dispose()


def test_a_store_call_inside_an_open_session_of_the_same_thread_does_not_hang(
        state_url: str) -> None:
    store = StateStore(state_url)
    store.upgrade()
    done = threading.Event()

    def nested() -> None:
        with pulling.sessions.write():
            pulling.mirror.cursor("hubspot.Lead")
        done.set()

    with store.on_one_connection() as pulling:
        thread = threading.Thread(target=nested, daemon=True)
        thread.start()
        thread.join(10)
        assert done.is_set()
        pulling.commit_page("hubspot.Lead", [], [], CursorState(T0, "2"))
    cursor = store.mirror.cursor("hubspot.Lead")
    assert cursor is not None and cursor.last_id == "2"
    store.dispose()
