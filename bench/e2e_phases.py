"""Each backfill phase beside the API calls made in it, and how far each lane fell below its
limit: the table to read where a backfill's wall time goes past its lower bound.

    python bench/e2e_phases.py RESULT.json     # the output of `bench/e2e.py --timeline`

A row per phase of the cycle's main thread (pull, match, evaluate_and_plan, push, read_back;
the push rounds beside evaluation are threads of their own and are left out), and a row
``(between)`` for any time between two phases (the cycle waiting for something that is no
phase, e.g. the push threads beside evaluation being joined). Per row: its span, the calls
of each lane in it (Salesforce, HubSpot searches, other HubSpot calls), and each lane's use
of its limit: HubSpot ``per_10s`` calls per ten seconds and ``searches_per_s`` searches a
second; Salesforce one call per latency, one after another (a bound per stream of calls, not
an API limit: several may be in flight).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

LANES = ("sf", "hs_search", "hs_other")
GAP_S = 0.5   # shorter time between two phases is the phase log's own overhead


def calls_in(per_s: list[dict[str, Any]], start: float, end: float) -> dict[str, float]:
    """Calls of each lane in [start, end), from per-second counts (a second cut by an end
    counts in proportion)."""
    out = dict.fromkeys(LANES, 0.0)
    for row in per_s:
        share = max(0.0, min(row["t"] + 1.0, end) - max(float(row["t"]), start))
        for lane in LANES:
            out[lane] += row.get(lane, 0) * share
    return out


def spans(phases: list[dict[str, Any]], wall: float) -> list[tuple[str, float, float]]:
    """The main thread's phases in time order, with the time between them (and before the
    first and after the last) as ``(between)``."""
    main = sorted((p for p in phases if p["phase"] != "push_round"), key=lambda p: p["start"])
    out: list[tuple[str, float, float]] = []
    moment = 0.0
    for phase in main:
        if phase["start"] > moment + GAP_S:
            out.append(("(between)", moment, phase["start"]))
        out.append((phase["phase"], phase["start"], phase["end"]))
        moment = max(moment, phase["end"])
    if wall > moment + GAP_S:
        out.append(("(between)", moment, wall))
    return out


def phase_table(timeline: dict[str, Any], wall: float, latency_s: float, per_10s: int,
                searches_per_s: int) -> list[dict[str, Any]]:
    limits = {"sf": 1 / latency_s, "hs_search": float(searches_per_s),
              "hs_other": per_10s / 10}
    rows = []
    for name, start, end in spans(timeline["phases"], wall):
        span = end - start
        calls = calls_in(timeline["per_s"], start, end)
        rows.append({"phase": name, "start": round(start, 1), "end": round(end, 1),
                     "span_s": round(span, 1),
                     "calls": {lane: round(n) for lane, n in calls.items()},
                     "of_limit": {lane: round(n / (limits[lane] * span), 2) if span > 0
                                  else None for lane, n in calls.items()}})
    return rows


def spread(per_10s: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Per-second counts from ten-second ones, evenly (a result written before ``per_s``)."""
    return [{"t": window["t"] + second, **{lane: window[lane] / 10 for lane in LANES}}
            for window in per_10s for second in range(10)]


def from_result(result: dict[str, Any]) -> list[dict[str, Any]]:
    backfill = result["backfill"]
    timeline = backfill["timeline"]
    if "per_s" not in timeline:
        timeline = {**timeline, "per_s": spread(timeline["per_10s"])}
    return phase_table(timeline, backfill["wall_s"],
                       result["salesforce_latency_ms"] / 1000,
                       result["hubspot_requests_per_10s"], result["hubspot_searches_per_second"])


def main() -> None:
    text = Path(sys.argv[1]).read_text()
    result = json.loads(text[text.index("{"):])     # the sandbox logs a line before it
    print(f"{'phase':18} {'from':>6} {'to':>6} {'span':>6}  "
          + "  ".join(f"{lane:>16}" for lane in LANES))
    for row in from_result(result):
        used = "  ".join(f"{row['calls'][lane]:6d} ({_pct(row['of_limit'][lane])})"
                         for lane in LANES)
        print(f"{row['phase']:18} {row['start']:6.1f} {row['end']:6.1f} {row['span_s']:6.1f}  "
              + used)


def _pct(share: float | None) -> str:
    return "   -   " if share is None else f"{share:6.0%}"


if __name__ == "__main__":
    main()
