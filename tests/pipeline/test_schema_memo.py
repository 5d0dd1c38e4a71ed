"""The connectors' schema facts in the state DB: kept when a connector read them, handed to
the next process only when they were read for the same mapping files."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from state.store import StateStore
from syncagent.pipeline import schema_memo


class Connector:
    system = "salesforce"

    def __init__(self, news: dict[str, Any] | None = None) -> None:
        self.news = news
        self.adopted: list[dict[str, Any]] = []

    def schema_facts(self) -> dict[str, Any] | None:
        news, self.news = self.news, None
        return news

    def adopt_schema_facts(self, facts: dict[str, Any]) -> None:
        self.adopted.append(facts)


def _agent(store: StateStore, fingerprint: str, *connectors: object) -> Any:
    return SimpleNamespace(store=store, rules=SimpleNamespace(fingerprint=fingerprint),
                           connectors=list(connectors))


def test_facts_travel_to_the_next_process_only_for_the_same_mappings(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    reader = Connector({"Lead": {"read_at": "2026-12-01T00:00:00+00:00", "fields": {}}})
    schema_memo.keep(_agent(store, "rules-1", reader, object()))
    assert set(store.schema_facts.load()) == {"sync:salesforce"}
    same, edited = Connector(), Connector()
    schema_memo.restore(_agent(store, "rules-1", same, object()))
    schema_memo.restore(_agent(store, "rules-2", edited))    # an admin edited a mapping
    assert same.adopted == [{"Lead": {"read_at": "2026-12-01T00:00:00+00:00", "fields": {}}}]
    assert edited.adopted == []


def test_a_connector_that_read_nothing_new_leaves_the_kept_facts_alone(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    schema_memo.keep(_agent(store, "rules-1", Connector({"Lead": {}})))
    before = store.schema_facts.load()
    schema_memo.keep(_agent(store, "rules-1", Connector(None)))
    assert store.schema_facts.load() == before
