"""The settle read-back: created records are fetched and mirrored a chunk at a time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base import RemoteRecord
from state.store import StateStore
from syncagent.errors import RetryableError
from syncagent.pipeline import settle

T0 = datetime(2026, 11, 1, tzinfo=UTC)


class _Portal:
    """A connector's fetch, counting the ids asked for in each call; fails from ``fail_at``."""

    system = "hubspot"

    def __init__(self, fail_at: int | None = None) -> None:
        self.asked: list[int] = []
        self.fail_at = fail_at

    def fetch(self, object: str, record_ids: Sequence[str]) -> list[RemoteRecord]:
        if self.fail_at is not None and len(self.asked) == self.fail_at:
            raise RetryableError("hubspot is down", system="hubspot")
        self.asked.append(len(record_ids))
        return [RemoteRecord("hubspot", object, rid, {"email": f"{rid}@x.com"}, T0)
                for rid in record_ids]


@pytest.fixture
def store(sqlite_url: str) -> StateStore:
    store = StateStore(sqlite_url)
    store.upgrade()
    return store


def _refs(n: int) -> list[tuple[str, str, str]]:
    return [("hubspot", "contacts", str(1000 + i)) for i in range(n)]


def test_thousands_of_creates_are_read_back_a_chunk_at_a_time(store: StateStore) -> None:
    portal = _Portal()
    many = 2 * settle.READ_BACK_CHUNK + 7
    connectors: Any = [portal]
    settle.read_back(connectors, store, _refs(many), [])
    assert portal.asked == [settle.READ_BACK_CHUNK, settle.READ_BACK_CHUNK, 7]
    assert len(store.mirror.records("hubspot", "contacts")) == many


def test_a_failed_chunk_keeps_what_was_mirrored_and_stops_that_system(
        store: StateStore) -> None:
    portal = _Portal(fail_at=1)
    connectors: Any = [portal]
    settle.read_back(connectors, store, _refs(settle.READ_BACK_CHUNK + 5), [])
    assert portal.asked == [settle.READ_BACK_CHUNK]
    assert len(store.mirror.records("hubspot", "contacts")) == settle.READ_BACK_CHUNK


def test_the_chunk_costs_no_extra_call() -> None:
    assert settle.READ_BACK_CHUNK % 100 == 0 and settle.READ_BACK_CHUNK % 200 == 0
