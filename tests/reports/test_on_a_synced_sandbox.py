"""Every report on a state DB the real pipeline filled (one sync of the sandbox): none fails,
and the funnel's figures agree with each other and with the stored decisions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from state.store import StateStore
from syncagent.reports import REPORTS
from tests.e2e.clitools import Cli, copy_mappings


def test_every_report_answers_on_a_synced_state_db(sandbox_factory: Any,
                                                    tmp_path: Path) -> None:
    sandbox = sandbox_factory(leads=120, seed=9)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    StateStore(state).upgrade()
    cli = Cli(sandbox.url, state, copy_mappings(tmp_path / "mappings"))
    assert cli.json("sync", "--once")["status"] in ("ok", "partial")
    wide = ["--since", "2000-01-01", "--until", "2100-01-01", "--by", "month",
            "--mappings", str(cli.mappings)]
    results = {}
    for name in REPORTS:
        extra = ["--proposed", str(cli.mappings)] if name == "rules-impact" else []
        done = cli("report", name, *wide, *extra, "--json")
        assert done.exit_code == 0, (name, done.output[-2000:])
        results[name] = json.loads(done.stdout)
    decisions = StateStore(state).decisions.of()
    funnel = {r["stage"]: r for r in results["funnel"]["tables"][0]["rows"]}
    # every person is in the cohort of a period this wide, and is now at exactly one stage
    assert sum(r["now"] for r in funnel.values()) == sum(1 for d in decisions.values()
                                                        if d["stage"] in funnel)
    assert funnel["MQL"]["reached"] >= funnel["SAL"]["reached"] >= funnel["SQL"]["reached"]
    new_leads = sum(r["new_leads"] for r in results["leads-over-time"]["tables"][0]["rows"])
    assert new_leads == len(StateStore(state).persons.all_ids())
    # The pipeline stores activities by the record they point at (no person id): the
    # campaigns report must still find the campaign responses of the synced persons.
    responses = StateStore(state).reports.activities_between(
        ["campaign_response"], datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
    assert responses, "the sandbox sync stored no campaign response"
    assert {fact.person_id for fact in responses} <= set(StateStore(state).persons.all_ids())
    campaigns = results["campaigns"]["tables"][0]["rows"]
    assert sum(row["responses"] for row in campaigns) == len(
        [fact for fact in responses if fact.campaign])
