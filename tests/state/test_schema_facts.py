"""The cached schema facts, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from state.schema_facts import SchemaFactsStore
from state.store import StateStore


@pytest.fixture(params=["sqlite", "postgres"])
def facts_store(request: pytest.FixtureRequest, tmp_path: object) -> SchemaFactsStore:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/facts.db"
    else:
        url = request.getfixturevalue("postgres_url")
    store = StateStore(url)
    store.upgrade()
    return store.schema_facts


def test_facts_are_replaced_per_system_and_come_back_with_an_aware_time(
        facts_store: SchemaFactsStore) -> None:
    first = datetime(2026, 12, 1, 1, 2, 3, tzinfo=UTC)
    facts_store.save("salesforce", {"objects": {"Lead": {"Segment__c": {"type": "picklist"}}}},
                     first)
    facts_store.save("hubspot", {"lists": {"Newsletter": {"id": "9"}}}, first)
    facts_store.save("salesforce", {"objects": {}}, first + timedelta(minutes=3))
    loaded = facts_store.load()
    assert loaded["salesforce"] == ({"objects": {}}, first + timedelta(minutes=3))
    assert loaded["hubspot"][0]["lists"]["Newsletter"]["id"] == "9"
    assert loaded["hubspot"][1].tzinfo is not None
    facts_store.forget()
    assert facts_store.load() == {}
