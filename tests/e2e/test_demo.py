"""`syncagent demo`: the new user's first command runs end to end and explains itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_two_cycles_and_prints_a_summary(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "syncagent", "demo", "--leads", "300", "--json",
         "--state-dir", str(tmp_path / "state"), "--mappings", str(ROOT / "mappings")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
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
