"""A cycle's status is honest: `ok` only when nothing was rejected or left and no step
failed."""

from __future__ import annotations

import pytest

from syncagent.errors import AuthError, BudgetExhausted, FatalError
from syncagent.pipeline.cycle import CycleReport, cycle_status


def _report(**values: object) -> CycleReport:
    report = CycleReport()
    for name, value in values.items():
        setattr(report, name, value)
    return report


@pytest.mark.parametrize(("values", "stopped", "expected"), [
    ({}, False, "ok"),
    ({}, True, "stopped"),
    ({"rejected": 3}, False, "partial"),
    ({"retried": 1}, False, "partial"),
    ({"errors": [{"error": "stopped", "cause": "BudgetExhausted"}]}, False, "partial"),
    ({"step_failed": True}, True, "failed"),
    ({"unfixable": [AuthError("login refused")], "rejected": 2}, False, "failed"),
])
def test_cycle_status(values: dict[str, object], stopped: bool, expected: str) -> None:
    assert cycle_status(_report(**values), stopped) == expected


def test_only_failures_no_retry_can_fix_stop_the_agent() -> None:
    from syncagent.errors import needs_a_person

    assert needs_a_person(AuthError("refused"))
    assert needs_a_person(FatalError("no such field", code="INVALID_FIELD"))
    assert needs_a_person(FatalError("org not set up", missing=["Lead.Lead_Grade__c"]))
    assert not needs_a_person(BudgetExhausted("share used"))
    assert not needs_a_person(FatalError("HTTP 404", code="OBJECT_NOT_FOUND"))


def test_a_cycles_outbox_figures_count_the_backlog_and_never_the_done_rows(
        tmp_path: object) -> None:
    """Done rows pile up for good (a million-person org: millions); the cycle's figures
    need the pending, in-flight and dead ones only, each an index range."""
    from pathlib import Path

    from state.store import NewOutboxRow, StateStore
    from syncagent.pipeline.cycle import _outbox_figures

    store = StateStore(f"sqlite:///{Path(str(tmp_path)) / 'figures.db'}")
    store.upgrade()
    store.outbox.enqueue([NewOutboxRow("hubspot", "contacts", "update", {"n": n}, f"k{n}",
                                       str(n), n) for n in range(3)])
    asked: list[object] = []
    counts = store.outbox.counts

    def recording(statuses: object = None) -> dict[str, int]:
        asked.append(statuses)
        return counts(statuses)  # type: ignore[arg-type]

    store.outbox.counts = recording  # type: ignore[method-assign]
    report = CycleReport()
    _outbox_figures(store, report)
    store.dispose()
    assert report.retry_pending == 3 and report.dead_letters == 0
    assert asked and all(s is not None and "done" not in s for s in asked)  # type: ignore[operator]
