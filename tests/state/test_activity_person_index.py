"""``ix_activities_person`` holds only activities with a stored person (migration 0007).

The pipeline stores every activity with an empty ``person_id``; an index entry for each of
them cost every pulled activity an insert that no read ever used. The reports' reads by
stored person still find those rows through the index, and 0007 upgrades and downgrades on
both databases without losing a row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import inspect, select

from state import models as m
from state.report_rows import Ids
from state.store import ActivityRow, CursorState, StateStore, schema_head
from tests.migrations import migrate

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _person_index(store: StateStore) -> dict[str, Any]:
    with store.engine.connect() as connection:
        found = [ix for ix in inspect(connection).get_indexes("activities")
                 if ix["name"] == "ix_activities_person"]
    assert len(found) == 1
    return dict(found[0])


def _where(index: dict[str, Any]) -> str:
    options = index.get("dialect_options", {})
    found = [options[k] for k in ("sqlite_where", "postgresql_where") if k in options]
    return " ".join(str(predicate) for predicate in found).lower()


def _activities(store: StateStore) -> None:
    pulled = [ActivityRow("hubspot", f"pv{i}", "page_view", T0, "contacts", str(i))
              for i in range(5)]
    store.commit_page("hubspot.contacts", [], pulled, CursorState(T0, "5"))
    imported = ActivityRow("salesforce", "00T1", "campaign_response", T0, person_id=7,
                           details={"campaign": "Webinar"})
    store.commit_page("salesforce.Task", [], [imported], CursorState(T0, "00T1"))


def _count(store: StateStore) -> int:
    with store.sessions.read() as session:
        return len(session.execute(select(m.Activity.source_id)).all())


def test_pulled_activities_with_no_person_are_left_out_of_the_index(state_url: str) -> None:
    store = StateStore(state_url)
    store.upgrade()
    _activities(store)
    index = _person_index(store)
    store.dispose()
    assert index["column_names"] == ["person_id", "occurred_at"]
    assert "person_id is not null" in _where(index)


def test_a_read_by_stored_person_still_goes_through_the_index(sqlite_url: str) -> None:
    store = StateStore(sqlite_url)
    store.upgrade()
    _activities(store)
    facts = store.reports.activities_of(Ids((7,)), ["campaign_response"])
    a = m.Activity
    query = (select(a.person_id, a.kind).where(a.person_id.is_not(None), a.person_id.in_([7]),
                                              a.kind.in_(["campaign_response"])))
    sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as connection:
        plan = " / ".join(row[3] for row in connection.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + sql))
    store.dispose()
    assert [(f.person_id, f.kind, f.campaign) for f in facts] == \
        [(7, "campaign_response", "Webinar")]
    assert "ix_activities_person" in plan


def test_0007_downgrades_and_upgrades_again_keeping_every_row(state_url: str) -> None:
    store = StateStore(state_url)
    store.upgrade()
    _activities(store)
    try:
        migrate(store, "0006", down=True)
        full = _person_index(store)
        rows_down = _count(store)
        assert store.upgrade() == schema_head()
        partial = _person_index(store)
        rows_up = _count(store)
    finally:
        store.dispose()
    assert _where(full) == ""
    assert "person_id is not null" in _where(partial)
    assert rows_down == rows_up == 6
