"""Activities read again: only a new or changed one is news for its person (echo.py), found by
their own keys in the state DB."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from connectors.base import ActivityRecord, Cursor, Page
from state import mirror
from state.store import ActivityRow, CursorState, StateStore
from syncagent.pipeline import pull
from syncagent.pipeline.echo import activity_news

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def store(sqlite_url: str) -> StateStore:
    store = StateStore(sqlite_url)
    store.upgrade()
    return store


def _view(n: int, contact: str = "101", **details: object) -> ActivityRow:
    return ActivityRow("hubspot", f"ev-{contact}-{n}", "page_view", T0 + timedelta(minutes=n),
                       "contacts", contact, dict(details))


def test_only_new_or_changed_activities_are_news(store: StateStore) -> None:
    stored = [_view(n) for n in range(3)] + [_view(0, contact="202")]
    store.commit_page("hubspot.web_events", [], stored, CursorState())
    page = [_view(0), _view(1, url="/pricing"), _view(7, contact="303"), _view(0, "202")]
    rows, news = activity_news(store, page)
    assert rows == page
    assert news == {("hubspot", "contacts", "101"), ("hubspot", "contacts", "303")}


def test_an_activity_that_moved_to_another_record_is_news_for_the_new_one(
        store: StateStore) -> None:
    store.commit_page("hubspot.web_events", [], [_view(0)], CursorState())
    moved = ActivityRow("hubspot", "ev-101-0", "page_view", T0, "contacts", "999", {})
    _rows, news = activity_news(store, [moved])
    assert news == {("hubspot", "contacts", "999")}


def test_a_counter_activity_keeps_the_date_it_was_first_seen(store: StateStore) -> None:
    first = ActivityRow("hubspot", "views-101-1", "page_view", T0, "contacts", "101",
                        {"derived_from": "hs_analytics_num_page_views"})
    store.commit_page("hubspot.contacts", [], [first], CursorState())
    again = ActivityRow("hubspot", "views-101-1", "page_view", T0 + timedelta(days=3),
                        "contacts", "101", {"derived_from": "hs_analytics_num_page_views"})
    rows, news = activity_news(store, [again])
    assert rows[0].occurred_at == T0 and news == set()


def test_a_page_reads_back_its_own_activities_not_all_of_their_records(
        store: StateStore) -> None:
    """A contact with thousands of stored events: a page of two of them reads two rows."""
    store.commit_page("hubspot.web_events", [], [_view(n) for n in range(3000)], CursorState())
    found = store.mirror.activities_by_source([("hubspot", "ev-101-5"), ("hubspot", "ev-101-7"),
                                               ("hubspot", "nope"), ("salesforce", "ev-101-5")])
    assert set(found) == {("hubspot", "ev-101-5"), ("hubspot", "ev-101-7")}
    assert found[("hubspot", "ev-101-7")].ref_id == "101"


def _event(source: str, contact: str, **details: object) -> ActivityRecord:
    return ActivityRecord("hubspot", source, "page_view", T0, ("hubspot", "contacts", contact),
                          dict(details))


def test_a_page_writes_only_its_new_or_changed_activities(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Activities read again as stored are not encoded and written again; what is queued for
    matching is as before (the records their news points at, and nothing else)."""
    cursor = Cursor(T0, None, frozenset())
    first = Page("web_events", "events", [_event("e1", "101"), _event("e2", "102")], cursor)
    pull.commit(first, "hubspot", store, pull.PullResult())
    store.persons.matched(store.persons.queued())
    written: list[str] = []
    upsert = mirror.upsert_activities

    def spied(session: Session, rows: Sequence[ActivityRow]) -> None:
        written.extend(r.source_id for r in rows)
        upsert(session, rows)

    monkeypatch.setattr(mirror, "upsert_activities", spied)
    again = Page("web_events", "events", [_event("e1", "101"), _event("e2", "102", url="/x"),
                                          _event("e3", "103")], cursor)
    pull.commit(again, "hubspot", store, pull.PullResult())
    assert written == ["e2", "e3"]
    assert store.persons.queued() == {("hubspot", "contacts", "102"),
                                      ("hubspot", "contacts", "103")}
    stored = store.mirror.activities_by_source([("hubspot", s) for s in ("e1", "e2", "e3")])
    assert {key[1]: row.details for key, row in stored.items()} == {
        "e1": {}, "e2": {"url": "/x"}, "e3": {}}
