"""state/activities.activity_tuples groups a chunk's rows by record with one look-up per run
of a record's rows: rows that do not come together (the database promises no order) still
land in their own record's list, in the order they came, none lost or repeated."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from state import activities
from state.store import StateStore

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_interleaved_rows_are_each_in_their_records_list(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp: Any = "2026-11-01 12:00:00.000000" if store.dialect == "sqlite" else T0
    order = ["a", "b", "a", "c", "c", "b", "a"]
    rows = [(rid, "hubspot", f"s{n}", "page_view", stamp, json.dumps({"n": n}), None)
            for n, rid in enumerate(order)]
    monkeypatch.setattr(activities, "driver_rows", lambda *_args: rows)
    got = store.mirror.activity_tuples([("contacts", rid) for rid in "abc"])
    assert {key: [(source, details["n"]) for _s, source, _k, _w, details, _p in acts]
            for key, acts in got.items()} == {
        ("contacts", "a"): [("s0", 0), ("s2", 2), ("s6", 6)],
        ("contacts", "b"): [("s1", 1), ("s5", 5)],
        ("contacts", "c"): [("s3", 3), ("s4", 4)]}
    assert all(when == T0 and when.tzinfo is UTC
               for acts in got.values() for _s, _src, _k, when, _d, _p in acts)
