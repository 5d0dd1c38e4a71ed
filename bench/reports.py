"""Benchmark: each report over a state DB of 100,000 persons, as the CLI and web page run it.

Seeds a state DB through the state store (see bench/report_world.py: persons, mirror records
of both systems, activities, stage history, SLA timers, feedback, cycles, outbox), then times
each report: `REPORTS[name].run(ReportSource(store, rules), period, options)` plus rendering
the result as JSON, the way `syncagent report NAME --json` and the web page do. Each report
gets a fresh ReportSource (nothing cached between reports, as between page loads); the figure
is the best of ``--rounds`` (with this process's CPU seconds in that round beside it: on a
shared machine the wall clock counts others' work too). Prints one JSON object: {report:
seconds, ...}, the CPU seconds, the load average and the seed size.

    python bench/reports.py [--persons 100000] [--postgres URL] [--keep PATH]

rules-impact re-evaluates every person under two rule sets (what it is for) and is timed
only with --impact: its cost is the engine's (see bench/engine.py), not a query's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report_world import NOW, seed  # noqa: E402
from state.scratch import create_schema, in_schema, scratch_schema  # noqa: E402
from state.store import StateStore  # noqa: E402
from syncagent.engine.loader import load_rules  # noqa: E402
from syncagent.reports import REPORTS, Options, ReportSource, default_period  # noqa: E402
from syncagent.reports.model import RulesChange  # noqa: E402


def time_reports(store: StateStore, rounds: int, impact: bool, by: str
                 ) -> tuple[dict[str, float], dict[str, float]]:
    """Per report, the best wall-clock seconds of ``rounds`` and this process's CPU seconds
    in that round (on a shared machine the wall clock also counts others' work)."""
    rules = load_rules(ROOT / "mappings")
    period = default_period(NOW, by)  # type: ignore[arg-type]
    options = Options(now=NOW, change=RulesChange(rules))
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for name, report in REPORTS.items():
        if name == "rules-impact" and not impact:
            continue
        best = (float("inf"), 0.0)
        for _ in range(rounds):
            started, started_cpu = time.perf_counter(), time.process_time()
            result = report.run(ReportSource(store, rules), period, options)
            json.dumps(result.to_dict())
            best = min(best, (time.perf_counter() - started, time.process_time() - started_cpu))
        wall[name], cpu[name] = round(best[0], 3), round(best[1], 3)
    return wall, cpu


def time_pages(store: StateStore, rounds: int) -> dict[str, float]:
    """Per dashboard page (the overview and each report page), the best wall-clock seconds of
    ``rounds`` real HTTP loads from a uvicorn server over ``store``: the report, its charts
    and the HTML, as a browser gets them."""
    from urllib.request import urlopen

    from syncagent.settings import load_settings
    from syncagent.web.app import create_app
    from syncagent.web.local import running

    settings = load_settings(state_url=store.url, mappings_dir=ROOT / "mappings")
    app = create_app(settings, store, clock=lambda: NOW)
    paths = {"overview": "/"} | {name: f"/reports/{name}" for name in REPORTS
                                  if name != "rules-impact"}
    pages: dict[str, float] = {}
    with running(app) as base:
        for page, path in paths.items():
            best = float("inf")
            for _ in range(rounds):
                started = time.perf_counter()
                with urlopen(base + path, timeout=60) as answer:
                    answer.read()
                best = min(best, time.perf_counter() - started)
            pages[page] = round(best, 3)
    return pages


def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Seed (unless a kept DB is seeded already), then time the reports."""
    store = StateStore(url)
    store.upgrade()
    started = time.perf_counter()
    sizes = seed(store, args.persons, args.activities) if not store.persons.all_ids() \
        else {"persons": len(store.persons.all_ids()), "reused": True}
    seeded_s = time.perf_counter() - started
    try:
        times, cpu = time_reports(store, args.rounds, args.impact, args.by)
        pages = time_pages(store, args.rounds) if args.by == "week" else {}
    finally:
        store.dispose()
    return {"seconds": times, "slowest": max(times.values()),
            "under_1s": all(t < 1 for t in times.values()), "cpu_seconds": cpu,
            "page_seconds": pages, "pages_under_1s": all(t < 1 for t in pages.values()),
            "load_average": [round(n, 1) for n in os.getloadavg()], "seed": sizes,
            "seed_seconds": round(seeded_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=5,
                        help="background activities per person, on average")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--by", default="week", choices=("day", "week", "month"))
    parser.add_argument("--impact", action="store_true", help="time rules-impact too")
    parser.add_argument("--postgres", metavar="URL",
                        help="run on this Postgres server (a fresh schema, dropped after) "
                             "instead of SQLite, e.g. postgresql+psycopg://postgres@127.0.0.1/test")
    parser.add_argument("--keep", type=Path, help="SQLite: keep the seeded DB at this path")
    parser.add_argument("--keep-schema", metavar="NAME",
                        help="Postgres: seed into this schema and keep it (reused if seeded)")
    args = parser.parse_args()
    figures: dict[str, Any] = {"persons": args.persons, "period": "90 days to " + NOW.isoformat(),
                               "by": args.by}
    if args.postgres and args.keep_schema:
        create_schema(args.postgres, args.keep_schema)
        figures["postgres"] = run(in_schema(args.postgres, args.keep_schema), args)
    elif args.postgres:
        with scratch_schema(args.postgres, "bench") as url:
            figures["postgres"] = run(url, args)
    elif args.keep:
        figures["sqlite"] = run(f"sqlite:///{args.keep}", args)
    else:
        with tempfile.TemporaryDirectory() as folder:
            figures["sqlite"] = run(f"sqlite:///{folder}/reports.db", args)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
