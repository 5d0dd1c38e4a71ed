"""Run history and change-latency samples are pruned past their retention, and nothing else.

Worst inputs first: a row exactly at the cut-off, a run still `running` from long ago, a cap
hit in the middle of a table, rows of every other table untouched, a failing DB, a clock that
went back.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from state import models as m
from state.runs import Key
from state.store import StateStore
from syncagent.cli import app
from syncagent.pipeline import housekeeping
from syncagent.pipeline.housekeeping import prune_history

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=30)


def _seed(store: StateStore, *, runs: list[datetime], samples: list[datetime]) -> None:
    with store.sessions.write() as session:
        if runs:
            session.execute(insert(m.Run), [
                {"kind": "cycle", "started_at": at, "finished_at": at, "status": "ok",
                 "counts": {}, "api_calls": {}, "errors": []} for at in runs])
        if samples:
            session.execute(insert(m.ChangeLatency), [
                {"system": "salesforce", "day": at.date(), "changed_at": at, "done_at": at,
                 "seconds": 3.0} for at in samples])


def _count(store: StateStore, table: Any) -> int:
    with store.sessions.read() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def _started(store: StateStore) -> list[datetime]:
    with store.sessions.read() as session:
        return sorted(session.scalars(select(m.Run.started_at)))


def test_only_rows_older_than_the_cutoff_go(store: StateStore) -> None:
    old = [CUTOFF - timedelta(days=d) for d in (1, 10, 400)]
    kept = [CUTOFF, CUTOFF + timedelta(seconds=1), NOW]
    _seed(store, runs=old + kept, samples=old + kept)
    with store.sessions.write() as session:  # a run killed long ago, left `running`
        session.execute(insert(m.Run), [{"kind": "cycle", "started_at": CUTOFF - timedelta(
            days=2), "status": "running", "counts": {}, "api_calls": {}, "errors": []}])
    store.runs.set_value(Key.LAST_CYCLE, {"status": "ok"})

    pruned = store.retention.prune(CUTOFF)

    assert (pruned.runs, pruned.latency, pruned.more_left) == (4, 3, False)
    assert _started(store) == kept
    # Samples go by whole UTC day, the unit sync health reports them in.
    assert _count(store, m.ChangeLatency) == 3
    assert store.runs.get_value(Key.LAST_CYCLE) == {"status": "ok"}


def test_a_capped_prune_says_more_is_left_and_the_next_one_finishes(store: StateStore) -> None:
    _seed(store, runs=[CUTOFF - timedelta(minutes=i + 1) for i in range(23)], samples=[])

    first = store.retention.prune(CUTOFF, batch=5, max_rows=12)
    assert (first.runs, first.more_left) == (12, True)
    second = store.retention.prune(CUTOFF, batch=5, max_rows=12)
    assert (second.runs, second.more_left) == (11, False)
    assert _count(store, m.Run) == 0


def test_a_cap_that_ends_exactly_at_the_last_row_leaves_nothing_behind(
        store: StateStore) -> None:
    _seed(store, runs=[CUTOFF - timedelta(hours=i + 1) for i in range(10)], samples=[])
    pruned = store.retention.prune(CUTOFF, batch=5, max_rows=10)
    assert (pruned.runs, pruned.more_left) == (10, False)


def test_the_agent_prunes_once_a_day(store: StateStore) -> None:
    _seed(store, runs=[NOW - timedelta(days=40)], samples=[NOW - timedelta(days=40)])
    assert prune_history(store, 30, NOW) is not None
    assert _count(store, m.Run) == 0 and _count(store, m.ChangeLatency) == 0

    _seed(store, runs=[NOW - timedelta(days=40)], samples=[])
    assert prune_history(store, 30, NOW + timedelta(hours=23)) is None  # not due yet
    assert _count(store, m.Run) == 1
    assert prune_history(store, 30, NOW + timedelta(days=1)) is not None
    assert _count(store, m.Run) == 0


def test_retention_zero_keeps_everything(store: StateStore) -> None:
    _seed(store, runs=[NOW - timedelta(days=4000)], samples=[NOW - timedelta(days=4000)])
    assert prune_history(store, 0, NOW) is None
    assert _count(store, m.Run) == 1 and _count(store, m.ChangeLatency) == 1


def test_a_clock_that_went_back_does_not_stop_pruning(store: StateStore) -> None:
    store.runs.set_value(Key.HISTORY_PRUNED, (NOW + timedelta(days=300)).isoformat())
    _seed(store, runs=[NOW - timedelta(days=40)], samples=[])
    assert prune_history(store, 30, NOW) is not None
    assert _count(store, m.Run) == 0


def test_a_garbled_marker_is_replaced(store: StateStore) -> None:
    store.runs.set_value(Key.HISTORY_PRUNED, "yesterday-ish")
    assert prune_history(store, 30, NOW) is not None
    assert store.runs.get_value(Key.HISTORY_PRUNED) == NOW.isoformat()


def test_a_failing_prune_is_logged_and_retried_never_raised(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(store, runs=[NOW - timedelta(days=40)], samples=[])
    seen: list[str] = []

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(store.retention, "prune", broken)
    monkeypatch.setattr(housekeeping.log, "warning",
                        lambda event, **_kw: seen.append(event))
    assert prune_history(store, 30, NOW) is None
    assert seen and "not pruned" in seen[0]
    assert store.runs.get_value(Key.HISTORY_PRUNED) is None  # so the next cycle tries again
    monkeypatch.undo()
    assert prune_history(store, 30, NOW) is not None
    assert _count(store, m.Run) == 0


def test_a_capped_prune_is_due_again_at_the_next_cycle(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(store, runs=[NOW - timedelta(days=40, minutes=i) for i in range(7)], samples=[])
    capped = store.retention.prune
    monkeypatch.setattr(store.retention, "prune",
                        lambda before: capped(before, batch=2, max_rows=4))
    assert prune_history(store, 30, NOW) is not None
    assert _count(store, m.Run) == 3
    assert prune_history(store, 30, NOW + timedelta(minutes=1)) is not None
    assert _count(store, m.Run) == 0


runner = CliRunner()


def test_db_prune_from_the_command_line(store: StateStore) -> None:
    now = datetime.now(UTC)
    _seed(store, runs=[now - timedelta(days=200), now - timedelta(days=5)],
          samples=[now - timedelta(days=200)])
    shown = runner.invoke(app, ["db", "prune", "--state", store.url, "--days", "30", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["runs"] == 1
    assert json.loads(shown.output)["change_latency"] == 1
    assert _count(store, m.Run) == 1
    refused = runner.invoke(app, ["db", "prune", "--state", store.url, "--days", "0"])
    assert refused.exit_code == 2 and "--days" in refused.output
