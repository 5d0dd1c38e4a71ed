"""export-persons: each person as they stood N days after creation, labelled by what
followed within H days; nothing from after the snapshot leaks into the document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from state.mirror import ActivityRow, CursorState, MirrorRow
from state.store import StateStore
from syncagent.cli import app
from syncagent.engine import Rules
from syncagent.learn.export import ExportSpec, ExportTally, export_persons
from tests.learn.conftest import SHIPPED

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _lead(rid: str, created: datetime, converted: datetime | None = None) -> MirrorRow:
    fields = {"Id": rid, "Email": f"{rid}@acme.example", "Title": "VP Marketing",
              "Company": "Acme", "Status": "Qualified" if converted else "Open - Not Contacted",
              "CreatedDate": created.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
              "IsConverted": converted is not None,
              "ConvertedDate": converted.date().isoformat() if converted else None}
    return MirrorRow("salesforce", "Lead", rid, fields, created)


def _visit(rid: str, n: int, at: datetime) -> ActivityRow:
    return ActivityRow("hubspot", f"{rid}-v{n}", "page_view", at, "Lead", rid,
                       {"url": "https://vendor.example/pricing"})


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    """Five leads: converted 20 days after the snapshot, converted before it, never
    converted, too young for the window, and converted after the window."""
    store = StateStore(state_url)
    store.upgrade()
    old = NOW - timedelta(days=200)
    leads = [_lead("00Qwin", old, old + timedelta(days=50)),
             _lead("00Qearly", old, old + timedelta(days=10)),
             _lead("00Qnever", old),
             _lead("00Qyoung", NOW - timedelta(days=60)),
             _lead("00Qlate", old, old + timedelta(days=150))]
    visits = [_visit(lead.remote_id, n, old + timedelta(days=day))
              for lead in leads for n, day in enumerate((5, 29, 31, 45))]
    store.commit_page("salesforce:Lead", leads, visits, CursorState(), now=NOW)
    ids = store.persons.create([lead.remote_id for lead in leads], now=NOW)
    store.persons.link([("salesforce", "Lead", lead.remote_id, pid, "test")
                        for lead, pid in zip(leads, ids, strict=True)], now=NOW)
    yield store
    store.dispose()


def test_snapshot_labels_and_leaves_out_what_cannot_be_learned(store: StateStore,
                                                               rules: Rules) -> None:
    tally = ExportTally()
    spec = ExportSpec(as_of_days=30, outcome="sql", within_days=90, now=NOW)
    docs = {d["profile"]["email"].split("@")[0]: d
            for d in export_persons(store, rules, spec, tally)}
    assert {k: d["outcome"] for k, d in docs.items()} == {
        "00qwin": True, "00qnever": False, "00qlate": False}
    assert tally.skipped == {"outcome before the snapshot": 1, "window not over yet": 1}
    assert (tally.written, tally.positives) == (3, 1)
    win = docs["00qwin"]
    snapshot = NOW - timedelta(days=170)
    assert datetime.fromisoformat(win["now"]) == snapshot
    # early bands count from the creation, so the snapshot carries it
    assert datetime.fromisoformat(win["created_at"]) == NOW - timedelta(days=200)
    # visits on days 5 and 29 happened by day 30; those of days 31 and 45 did not yet
    assert sorted(a["occurred_at"] for a in win["activities"]) == [
        (snapshot - timedelta(days=25)).isoformat(), (snapshot - timedelta(days=1)).isoformat()]
    assert "crm" not in win   # today's status may be the outcome itself


def test_the_cli_writes_a_file_backtest_reads(store: StateStore, state_url: str,
                                              tmp_path: Path) -> None:
    out = tmp_path / "persons.jsonl"
    run = CliRunner().invoke(app, ["export-persons", "--state", state_url, "--out", str(out),
                                   "--as-of-days", "30", "--within-days", "90",
                                   "--now", NOW.isoformat(), "--mappings", str(SHIPPED)])
    assert run.exit_code == 0, run.output
    assert "3 persons (1 with the outcome)" in run.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["outcome"] for line in lines].count(True) == 1
    run = CliRunner().invoke(app, ["backtest", "--persons", str(out), "--mappings",
                                   str(SHIPPED), "--bootstrap", "0"])
    assert run.exit_code == 0, run.output
    assert "3 persons, 1 with the outcome" in run.output


def test_an_unknown_outcome_is_a_clear_error(tmp_path: Path) -> None:
    run = CliRunner().invoke(app, ["export-persons", "--outcome", "revenue",
                                   "--state", f"sqlite:///{tmp_path}/s.db"])
    assert run.exit_code == 1
    assert "--outcome 'revenue' is not one of sql, opportunity, won" in run.output


def test_the_stage_history_says_when_the_outcome_came(store: StateStore, rules: Rules) -> None:
    from state.handoff import HandoffRows, StageChange

    ids = {lead: pid for (_s, _o, lead), pid in store.persons.links().items()}
    old = NOW - timedelta(days=200)
    rows = HandoffRows(history=[
        StageChange("h1", ids["00Qnever"], old + timedelta(days=40), "MQL", "SQL", "rep",
                    "005x"),
        # a backfilled row's time is an evaluation's, not the change's: not an outcome time
        StageChange("h2", ids["00Qlate"], old + timedelta(days=60), "MQL", "SQL", "backfill",
                    None)])
    store.commit_evaluation([], [], {}, {}, now=NOW, handoff=rows)
    spec = ExportSpec(as_of_days=30, outcome="sql", within_days=90, now=NOW)
    docs = {d["profile"]["email"].split("@")[0]: d["outcome"]
            for d in export_persons(store, rules, spec, ExportTally())}
    assert docs == {"00qwin": True, "00qnever": True, "00qlate": False}
    won = ExportSpec(as_of_days=30, outcome="won", within_days=90, now=NOW)
    assert not any(d["outcome"] for d in export_persons(store, rules, won, ExportTally()))
