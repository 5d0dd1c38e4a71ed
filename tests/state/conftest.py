"""Fixtures of the state-store tests (each runs on SQLite and on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from state.store import StateStore


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    """A migrated, empty state DB."""
    store = StateStore(state_url)
    store.upgrade()
    yield store
    store.dispose()
