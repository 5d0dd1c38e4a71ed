"""`syncagent demo`: the new user's first command runs end to end and explains itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _demo(tmp_path: Path, *options: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "syncagent", "demo", *options, "--json",
         "--state-dir", str(tmp_path / "state"), "--mappings", str(ROOT / "mappings")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def test_demo_runs_two_cycles_and_prints_a_summary(tmp_path: Path) -> None:
    summary = _demo(tmp_path, "--leads", "300")
    backfill, second = summary["cycles"]
    assert summary["persons"] >= 300 and sum(summary["grades"].values()) == summary["persons"]
    assert backfill["written"]["salesforce"] > 0 and backfill["rejected"] == 0
    assert second["pulled"], "the second cycle reads what the simulation changed"
    assert second["written"]["salesforce"] > 0, "rep actions and new behaviour cause writes"
    assert second["retry_pending"] == 0 and second["rejected"] == 0, second
    assert summary["owners"] and summary["tracks"], summary
    assert summary["explained"].startswith("Grade "), "one lead is explained in words"
    calls = summary["api_calls_vs_minimum"]
    assert calls["salesforce"]["calls"] <= 1.1 * calls["salesforce"]["minimum"] + 1


def test_the_demo_minimum_is_never_above_what_its_backfill_spent(tmp_path: Path) -> None:
    """The world `make demo` shows (its defaults): a minimum counted with one page size for
    every stream (200 web events a page where the API serves 1,000) exceeded the calls."""
    calls = _demo(tmp_path)["api_calls_vs_minimum"]
    assert set(calls) == {"salesforce", "hubspot"}
    for system, figures in calls.items():
        assert 0 < figures["minimum"] <= figures["calls"], (system, figures)
