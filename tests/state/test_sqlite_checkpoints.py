"""SQLite's WAL is checkpointed every few thousand pages, not every 1,000 (its default).

A backfill's page commits each dirty pages all over the mirror's and the activities' indexes;
a checkpoint copies every distinct page of the WAL back into the database file, so a small
threshold copied the same hot pages over and over (the pull's reads and writes went down by
~40% at the larger threshold). What is committed stays committed: a process killed after its
commits, before any checkpoint, leaves every row readable.
"""

from __future__ import annotations

import multiprocessing
import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from state.db import SQLITE_CHECKPOINT_PAGES
from state.store import ActivityRow, CursorState, StateStore

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PAGE = 4096
PAGES = 60   # ~8 MB of WAL: over the default threshold, under ours


def _commit_pages(url: str, pages: int, rows: int = 200) -> None:
    store = StateStore(url)
    for page in range(pages):
        batch = [ActivityRow("hubspot", f"e{page}-{i}", "page_view", T0, "contacts",
                             str(i), {"url": "x" * 400}) for i in range(rows)]
        store.commit_page("hubspot.events", [], batch, CursorState(T0, str(page)))
    store.dispose()


def _killed_after_commits(url: str, pages: int) -> None:
    _commit_pages(url, pages)
    os._exit(0)   # no close, no checkpoint: as a kill would leave it


def test_a_backfill_wal_is_not_checkpointed_every_thousand_pages(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    StateStore(url).upgrade()
    store = StateStore(url)
    with store.engine.connect() as connection:
        threshold = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    store.dispose()
    process = multiprocessing.get_context("spawn").Process(
        target=_killed_after_commits, args=(url, PAGES))
    process.start()
    # a spawned interpreter imports the project first: on a busy 2-core machine that alone
    # took over a minute, so the wait is generous and the child's end is checked
    process.join(600)
    assert process.exitcode == 0, f"the committing process ended with {process.exitcode}"
    wal = tmp_path / "state.db-wal"
    assert threshold == SQLITE_CHECKPOINT_PAGES >= 4_000
    # at the default threshold the WAL would have been checkpointed and reused from its start
    assert wal.stat().st_size > 1_500 * PAGE
    reopened = StateStore(url)
    with reopened.sessions.read() as session:
        stored = session.execute(text("SELECT count(*) FROM activities")).scalar()
    reopened.dispose()
    assert stored == PAGES * 200
