"""`syncagent dry-run --json` against the sandbox: its changes plus the rules-impact summary
of the mappings it was given (--mappings) against the live ones, nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from state.store import StateStore
from tests.e2e.clitools import Cli, copy_mappings

# intent_min_score raised to the sum of the category caps (385): only a person with every
# category full stays high intent; every other high-intent segment becomes its low-intent one
LOW_INTENT = {"sales-now": "nurture-then-sales", "other-offers": "leave"}


def _segment_moves(data: dict[str, Any]) -> list[tuple[str, str, int]]:
    [matrix] = [t for t in data["rules_impact"]["tables"] if t["title"] == "transitions"]
    return [(r["before"], r["after"], r["persons"]) for r in matrix["rows"]
            if r["part"] == "segment"]


def test_dry_run_json_carries_the_rules_impact_of_its_mappings(sandbox_factory: Any,
                                                              tmp_path: Path) -> None:
    sandbox = sandbox_factory(leads=60, seed=5)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    StateStore(state).upgrade()
    cli = Cli(sandbox.url, state, copy_mappings(tmp_path / "mappings"))
    cli.json("sync", "--once")
    decisions = StateStore(state).decisions.of()
    same = cli.json("dry-run")
    assert {"changes", "persons_evaluated", "api_calls", "rules_impact"} <= set(same)
    summary = same["rules_impact"]["tables"][0]["rows"]
    assert [(r["part"], r["changed"]) for r in summary] == [
        (part, 0) for part in ("grade", "stage", "segment", "owner", "track")]
    assert {r["persons"] for r in summary} == {len(decisions)}

    scoring = cli.mappings / "scoring.yaml"
    scoring.write_text(scoring.read_text().replace("intent_min_score: 50",
                                                   "intent_min_score: 385"))
    moved = _segment_moves(cli.json("dry-run"))
    assert all(after in (before, LOW_INTENT.get(before)) for before, after, _n in moved), moved
    changed = sum(n for before, after, n in moved if before != after)
    assert changed == sum(1 for d in decisions.values()
                          if d["segment"] in LOW_INTENT and d["score"] < 385) > 0
    assert StateStore(state).decisions.of() == decisions   # a dry run writes no decision
