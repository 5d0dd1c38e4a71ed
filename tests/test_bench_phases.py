"""bench/e2e_phases.py: a backfill's phases beside the calls made in them. The time between
two phases (the cycle joining the push threads beside evaluation while a system sits idle)
must show as a row of its own, or the table hides the gap it is there to find."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from e2e_phases import calls_in, phase_table  # noqa: E402


def _timeline() -> dict[str, Any]:
    # pull 0-4 s; evaluation 4-6 s with a push round beside it; nothing 6-8 s; push 8-10 s
    phases = [{"phase": "pull", "start": 0.0, "end": 4.0},
              {"phase": "evaluate_and_plan", "start": 4.0, "end": 6.0},
              {"phase": "push_round", "start": 4.5, "end": 7.9},
              {"phase": "push", "start": 8.0, "end": 10.0}]
    per_s = [{"t": t, "sf": 10 if t < 4 else 0, "hs_search": 5 if t < 4 else 0,
              "hs_other": 10 if t >= 8 else (1 if t >= 4 else 0), "r429": 0}
             for t in range(10)]
    return {"phases": phases, "per_s": per_s}


def test_the_time_between_phases_is_a_row_of_its_own() -> None:
    rows = phase_table(_timeline(), wall=10.0, latency_s=0.1, per_10s=100, searches_per_s=5)
    assert [(r["phase"], r["start"], r["end"]) for r in rows] == [
        ("pull", 0.0, 4.0), ("evaluate_and_plan", 4.0, 6.0), ("(between)", 6.0, 8.0),
        ("push", 8.0, 10.0)]
    between = rows[2]
    assert between["calls"]["hs_other"] == 2
    assert between["of_limit"]["hs_other"] == 0.1


def test_each_lane_is_measured_against_its_own_limit() -> None:
    rows = phase_table(_timeline(), wall=10.0, latency_s=0.1, per_10s=100, searches_per_s=5)
    pull, push = rows[0], rows[-1]
    assert pull["of_limit"] == {"sf": 1.0, "hs_search": 1.0, "hs_other": 0.0}
    assert push["of_limit"]["hs_other"] == 1.0


def test_a_second_cut_by_a_phase_end_counts_in_proportion() -> None:
    per_s = [{"t": 0, "sf": 10, "hs_search": 0, "hs_other": 4}]
    assert calls_in(per_s, 0.25, 0.75) == {"sf": 5.0, "hs_search": 0.0, "hs_other": 2.0}


def test_a_phase_of_no_length_has_no_share() -> None:
    timeline = {"phases": [{"phase": "match", "start": 1.0, "end": 1.0}],
                "per_s": [{"t": 0, "sf": 1, "hs_search": 0, "hs_other": 0}]}
    rows = phase_table(timeline, wall=1.0, latency_s=0.1, per_10s=100, searches_per_s=5)
    match = next(r for r in rows if r["phase"] == "match")
    assert match["of_limit"]["sf"] is None
