"""pull() stores both systems' pages as they arrive, and says per system how long its thread
waited for pages and how long it spent storing them (which side held the pull up).

The connectors here are stubs: each yields pages slowly (as an API would), from its own
thread, while the other stores; every page and the last cursor of each stream must be
stored, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.base import Cursor, Page, RemoteRecord
from state.store import StateStore
from syncagent.pipeline import pull

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PAGES = 6
ROWS = 30
DELAY_S = 0.03   # the API's time per page


class SlowConnector:
    """Yields PAGES pages of one stream, DELAY_S apart."""

    def __init__(self, system: str) -> None:
        self.system = system
        self.streams = {"Lead": None}
        self.features_off: dict[str, str] = {}

    def read_many(self, cursors: Mapping[str, Cursor | None], **_: Any) -> Iterator[Page]:
        for page in range(PAGES):
            time.sleep(DELAY_S)
            records: list[Any] = [
                RemoteRecord(self.system, "Lead", f"{page}-{i}", {"Email": f"{page}.{i}@x.io"},
                             T0) for i in range(ROWS)]
            yield Page(stream="Lead", object="Lead", records=records,
                       cursor=Cursor(T0, f"{page}-{ROWS - 1}"), done=page == PAGES - 1)


def test_both_systems_pages_and_cursors_are_stored_and_timed(state_url: str) -> None:
    store = StateStore(state_url)
    store.upgrade()
    connectors: list[Any] = [SlowConnector("salesforce"), SlowConnector("hubspot")]
    result = pull.pull(connectors, store, T0, threading.Event())
    for system in ("salesforce", "hubspot"):
        assert result.counts[f"{system}.Lead"] == PAGES * ROWS
        assert len(store.mirror.records(system, "Lead")) == PAGES * ROWS
        cursor = store.mirror.cursor(f"{system}.Lead")
        assert cursor is not None and cursor.last_id == f"{PAGES - 1}-{ROWS - 1}"
        # the thread waited at least the API's time for each page, and stored each page
        assert result.waited_s[system] >= PAGES * DELAY_S * 0.9
        assert result.stored_s[system] > 0
    store.dispose()


def test_a_stop_ends_the_pull_after_the_page_being_stored(state_url: str) -> None:
    store = StateStore(state_url)
    store.upgrade()
    stop = threading.Event()
    stop.set()
    result = pull.pull([SlowConnector("hubspot")], store, T0, stop)  # type: ignore[list-item]
    assert result.counts["hubspot.Lead"] == ROWS
    cursor = store.mirror.cursor("hubspot.Lead")
    assert cursor is not None and cursor.last_id == f"0-{ROWS - 1}"
    assert set(result.waited_s) == set(result.stored_s) == {"hubspot"}
    store.dispose()
