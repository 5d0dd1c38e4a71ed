"""Which activities a page brings are news: looked up by their own ids, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from state.store import ActivityRow, CursorState, StateStore
from syncagent.pipeline.echo import activity_news

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _event(source: str, contact: str, *, system: str = "hubspot", when: datetime = T0,
           **details: object) -> ActivityRow:
    return ActivityRow(system, source, "page_view", when, "contacts", contact, dict(details))


def _store_page(store: StateStore, rows: list[ActivityRow]) -> None:
    store.commit_page("hubspot.web_events", [], rows, CursorState(T0, None, frozenset()))


def test_only_new_moved_or_changed_activities_are_news(store: StateStore) -> None:
    _store_page(store, [_event("e1", "101"), _event("e2", "101"), _event("e3", "102")])
    page = [_event("e1", "101"),                             # read again as stored
            _event("e2", "103"),                             # now points at another contact
            _event("e3", "102", url="/pricing"),             # its details changed
            _event("e4", "104"),                             # new
            _event("e1", "105", system="salesforce")]        # same id, the other system
    rows, news = activity_news(store, page)
    assert rows == page
    assert news == {("hubspot", "contacts", "103"), ("hubspot", "contacts", "102"),
                    ("hubspot", "contacts", "104"), ("salesforce", "contacts", "105")}


def test_a_counter_activity_keeps_the_date_it_was_first_seen(store: StateStore) -> None:
    _store_page(store, [_event("c1", "101", derived_from="hs_analytics_num_page_views")])
    again = _event("c1", "101", when=T0 + timedelta(hours=3),
                   derived_from="hs_analytics_num_page_views")
    rows, news = activity_news(store, [again])
    assert rows[0].occurred_at == T0
    assert news == set()


def test_activities_for_reads_each_activitys_details_as_stored(store: StateStore) -> None:
    """The details are parsed once per distinct text: equal details, nested ones, unicode
    and none at all all come back as they were stored, on both databases."""
    nested = {"url": "/pricing", "properties": {"hs_title": "Pricing \u00e9t\u00e9", "n": 2}}
    _store_page(store, [_event("d1", "201", **nested), _event("d2", "201", **nested),
                        _event("d3", "202"), _event("d4", "202", form="Contact sales")])
    found = store.mirror.activities_for([("contacts", "201"), ("contacts", "202")])
    details = {row.source_id: row.details for rows in found.values() for row in rows}
    assert details == {"d1": nested, "d2": nested, "d3": {}, "d4": {"form": "Contact sales"}}
