"""Fixtures of the dashboard tests: the hand-seeded report world (tests/reports/conftest.py)
in a SQLite state DB, and a dashboard serving it from a real uvicorn on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from state.store import StateStore
from syncagent.settings import Settings, load_settings
from syncagent.web.app import create_app
from syncagent.web.local import running
from tests.reports.conftest import MAPPINGS, NOW, _world, add_runs, seed

Serve = Callable[..., str]


def settings_for(url: str, **overrides: Any) -> Settings:
    return load_settings(state_url=url, mappings_dir=MAPPINGS, **overrides)


@pytest.fixture
def empty_store(tmp_path: Path) -> Iterator[StateStore]:
    """A migrated state DB with nothing in it: no cycle, no lead."""
    store = StateStore(f"sqlite:///{tmp_path / 'empty.db'}")
    store.upgrade()
    yield store
    store.dispose()


@pytest.fixture
def world_store(tmp_path: Path) -> Iterator[StateStore]:
    """The November 2026 world of the report tests, with its three cycles and outbox."""
    store = StateStore(f"sqlite:///{tmp_path / 'world.db'}")
    store.upgrade()
    seed(store, _world())
    add_runs(store)
    yield store
    store.dispose()


@pytest.fixture
def serve() -> Iterator[Serve]:
    """serve(store, clock=..., **settings) -> the base URL of a dashboard over ``store``,
    stopped at the end of the test."""
    with ExitStack() as stack:

        def start(store: StateStore, clock: Any = lambda: NOW, **overrides: Any) -> str:
            app = create_app(settings_for(store.url, **overrides), store, clock=clock)
            return stack.enter_context(running(app))

        yield start
