"""Cursor rules with plain data: >= with lookback, boundary dedupe, cap at the cycle start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.base import Cursor
from connectors.cursor import CursorWindow, lower_bound, max_numeric_id, record_key

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
LOOKBACK = timedelta(seconds=300)


def _read(cursor: Cursor | None, rows: list[tuple[str, datetime]],
          cycle_start: datetime) -> tuple[list[str], Cursor]:
    """Simulate one read: the remote returns every row with modstamp >= lower, in order."""
    window = CursorWindow(cursor, lookback=LOOKBACK, cycle_start=cycle_start)
    lower = window.lower
    visible = sorted((r for r in rows if lower is None or r[1] >= lower),
                     key=lambda r: (r[1], r[0]))
    emitted = [rid for rid, ms in visible if window.admit(rid, ms)]
    return emitted, window.cursor()


def test_first_read_has_no_lower_bound_and_emits_everything() -> None:
    rows = [("a", T0), ("b", T0 + timedelta(seconds=1))]
    emitted, cursor = _read(None, rows, T0 + timedelta(hours=1))
    assert emitted == ["a", "b"]
    assert cursor.modstamp == T0 + timedelta(seconds=1)


def test_rereading_the_lookback_window_emits_nothing_twice() -> None:
    rows = [("a", T0), ("b", T0 + timedelta(seconds=1))]
    _, cursor = _read(None, rows, T0 + timedelta(hours=1))
    emitted, again = _read(cursor, rows, T0 + timedelta(hours=2))
    assert emitted == []
    assert again.modstamp == cursor.modstamp


def test_a_row_committed_late_inside_the_lookback_is_read_once() -> None:
    rows = [("a", T0), ("b", T0 + timedelta(seconds=10))]
    _, cursor = _read(None, rows, T0 + timedelta(seconds=20))
    # "late" commits after the read with an OLDER modstamp than the high-water mark
    rows.append(("late", T0 + timedelta(seconds=5)))
    emitted, cursor2 = _read(cursor, rows, T0 + timedelta(seconds=40))
    assert emitted == ["late"]
    emitted3, _ = _read(cursor2, rows, T0 + timedelta(seconds=60))
    assert emitted3 == []


def test_a_row_updated_again_is_emitted_again_as_a_new_version() -> None:
    rows = [("a", T0)]
    _, cursor = _read(None, rows, T0 + timedelta(seconds=5))
    rows = [("a", T0 + timedelta(seconds=3))]
    emitted, _ = _read(cursor, rows, T0 + timedelta(seconds=10))
    assert emitted == ["a"]


def test_high_water_mark_never_passes_the_cycle_start() -> None:
    start = T0 + timedelta(seconds=30)
    rows = [("a", T0), ("future", start + timedelta(seconds=50))]
    emitted, cursor = _read(None, rows, start)
    assert emitted == ["a", "future"]
    assert cursor.modstamp == start
    # the row stamped after the cycle start stays deduped on the next read
    emitted2, _ = _read(cursor, rows, start + timedelta(seconds=60))
    assert emitted2 == []


def test_boundary_keys_are_pruned_outside_the_next_window() -> None:
    rows = [("old", T0), ("new", T0 + timedelta(hours=1))]
    _, cursor = _read(None, rows, T0 + timedelta(hours=2))
    assert record_key("new", T0 + timedelta(hours=1)) in cursor.boundary_ids
    assert record_key("old", T0) not in cursor.boundary_ids


def test_lower_bound_is_cursor_minus_lookback() -> None:
    assert lower_bound(None, LOOKBACK) is None
    assert lower_bound(Cursor(modstamp=T0), LOOKBACK) == T0 - LOOKBACK


def test_hubspot_ids_compare_numerically_not_as_text() -> None:
    assert max_numeric_id("9", "10") == "10"
    assert max_numeric_id("101", "99") == "101"
    assert max_numeric_id(None, "5") == "5"


def test_many_rows_sharing_one_modstamp_are_each_emitted_once() -> None:
    rows = [(f"id{i:05d}", T0) for i in range(3000)]
    emitted, cursor = _read(None, rows, T0 + timedelta(seconds=1))
    assert len(emitted) == 3000
    emitted2, _ = _read(cursor, [*rows, ("extra", T0)], T0 + timedelta(seconds=2))
    assert emitted2 == ["extra"]


def test_a_second_edit_inside_the_same_second_is_a_new_version_by_content() -> None:
    window = CursorWindow(None, lookback=LOOKBACK, cycle_start=T0 + timedelta(seconds=5))
    assert window.admit("a", T0, "hash-v1")
    assert not window.admit("a", T0, "hash-v1")
    assert window.admit("a", T0, "hash-v2")
    cursor = window.cursor()
    again = CursorWindow(cursor, lookback=LOOKBACK, cycle_start=T0 + timedelta(seconds=9))
    assert not again.admit("a", T0, "hash-v2")


def test_a_complete_read_moves_the_high_water_mark_to_the_cycle_start() -> None:
    """After a full read at C, everything stamped before C - lookback was committed and read:
    the next read starts at C - lookback and re-reads nothing from a quiet past."""
    rows = [("a", T0)]
    start = T0 + timedelta(hours=1)
    window = CursorWindow(None, lookback=LOOKBACK, cycle_start=start)
    assert window.admit("a", T0)
    cursor = window.cursor(complete=True)
    assert cursor.modstamp == start
    assert cursor.boundary_ids == frozenset()          # nothing left inside the next window
    emitted, _ = _read(cursor, rows, start + timedelta(minutes=10))
    assert emitted == []


def test_a_long_read_keeps_only_the_keys_inside_the_next_window() -> None:
    """A backfill of 50,000 rows, a page of 100 at a time: the window (held for the whole
    stream) keeps the keys the cursor must carry, never one per row read."""
    start = T0 + timedelta(days=400)
    window = CursorWindow(None, lookback=LOOKBACK, cycle_start=start)
    largest = 0
    for page in range(500):
        for i in range(100):
            n = page * 100 + i
            assert window.admit(f"id{n}", T0 + timedelta(minutes=n))
        cursor = window.cursor(last_id=f"id{page * 100 + 99}")
        largest = max(largest, len(window._keys))
        # the keys inside the lookback of the newest row: a resumed read needs those
        assert cursor.boundary_ids == frozenset(window._keys)
        assert record_key(f"id{page * 100 + 99}", T0 + timedelta(minutes=page * 100 + 99)) \
            in cursor.boundary_ids
    assert largest <= 100 + LOOKBACK / timedelta(minutes=1) + 1
    # what the window forgot is outside the re-read window: a resumed read admits nothing old
    again = CursorWindow(cursor, lookback=LOOKBACK, cycle_start=start)
    newest = T0 + timedelta(minutes=49_999)
    assert not again.admit("id49999", newest)


def test_rows_read_again_inside_the_lookback_after_a_page_are_not_emitted_twice() -> None:
    """A Salesforce query restarted from the committed cursor (dead query locator) re-reads
    the rows inside the lookback: the window still knows them after the page's cursor."""
    window = CursorWindow(None, lookback=LOOKBACK, cycle_start=T0 + timedelta(hours=1))
    rows = [(f"r{i}", T0 + timedelta(seconds=i * 10)) for i in range(100)]
    for rid, when in rows:
        window.admit(rid, when)
    cursor = window.cursor(last_id="r99")
    reread = [rid for rid, when in rows if when >= cursor.modstamp - LOOKBACK
              and window.admit(rid, when)]
    assert reread == []
