"""Calibration benchmark: train on one sandbox world, test on another.

For each of two seeds (A, B; none used by the tests) a sandbox with ``--leads`` leads is
served in this process and synced once into a fresh SQLite state DB by `syncagent sync --once`
(a process of its own, as an operator runs it). The persons are exported as they stood
``--as-of-days`` after creation, labelled by a conversion within ``--within-days``. The rules
are calibrated on all of A's persons; the shipped rules, the calibrated rules and the plain
logistic regression they round are then measured on B's. Then the time of `backtest` and
`calibrate` over ``--timing-persons`` persons (B's, repeated under new ids), each a process
pinned to one core. Prints JSON.

    python bench/calibrate.py [--leads 3000] [--seed-a 101] [--seed-b 202]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from state.store import StateStore  # noqa: E402
from syncagent.engine import Rules, load_rules  # noqa: E402
from syncagent.engine.person_file import parse_person  # noqa: E402
from syncagent.learn.backtest import report, score_persons  # noqa: E402
from syncagent.learn.export import ExportSpec, ExportTally, export_persons  # noqa: E402
from syncagent.learn.features import extract  # noqa: E402
from syncagent.learn.metrics import auc  # noqa: E402
from syncagent.learn.persons import LabelledPerson, write_persons  # noqa: E402
from syncagent.learn.workflow import Targets, propose  # noqa: E402

MAPPINGS = ROOT / "mappings"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SYNCAGENT_")},
            "SYNCAGENT_LOG_LEVEL": "warning", **ONE_THREAD}


def sync_once(sandbox_url: str, state_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "syncagent", "sync", "--once", "--json", "--sandbox",
         sandbox_url, "--state", state_url, "--mappings", str(MAPPINGS)],
        capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"sync --once failed ({done.returncode}): {done.stderr[-2000:]}")


def world(seed: int, leads: int, as_of: float, within: float, rules: Rules
          ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A seeded sandbox, synced once, exported as persons documents."""
    from syncagent.sandbox.common import FaultProfile
    from syncagent.sandbox.server import start_sandbox

    # HubSpot's burst limits only stretch the sync's wall time; this bench measures rules.
    faults = FaultProfile(hubspot_requests_per_10s=1_000_000,
                          hubspot_searches_per_second=1_000_000)
    sandbox = start_sandbox(leads=leads, seed=seed, faults=faults)
    try:
        with tempfile.TemporaryDirectory(prefix="syncagent-calibrate-") as tmp:
            state_url = f"sqlite:///{Path(tmp) / 'state.db'}"
            store = StateStore(state_url)
            try:
                store.upgrade()
                sync_once(sandbox.url, state_url)
                tally = ExportTally()
                spec = ExportSpec(as_of, "sql", within, sandbox.ctx.clock.now())
                docs = list(export_persons(store, rules, spec, tally))
            finally:
                store.dispose()
    finally:
        sandbox.stop()
    return docs, {"seed": seed, "persons": tally.written, "outcomes": tally.positives,
                  "left_out": dict(tally.skipped)}


def labelled(docs: list[dict[str, Any]], rules: Rules) -> list[LabelledPerson]:
    out = []
    for doc in docs:
        person, at, _routing, _users = parse_person(doc, rules, f"person {doc['person_id']}")
        out.append(LabelledPerson(person, at, bool(doc["outcome"])))
    return out


def timed(args: list[str]) -> float:
    """Wall seconds of one syncagent command pinned to one core."""
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    start = time.perf_counter()
    done = subprocess.run([*pin, sys.executable, "-m", "syncagent", *args], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed: {done.stderr[-2000:]}")
    return round(time.perf_counter() - start, 1)


def timing(docs: list[dict[str, Any]], n: int, tmp: Path) -> dict[str, Any]:
    """backtest and calibrate over n persons (the documents repeated under new ids)."""
    path = tmp / "persons-timing.jsonl"
    with path.open("w", encoding="utf-8") as out:
        write_persons(({**docs[i % len(docs)], "person_id": f"t{i}"} for i in range(n)), out)
    common = ["--persons", str(path), "--mappings", str(MAPPINGS)]
    return {"persons": n,
            "backtest_seconds": timed(["backtest", *common, "--json"]),
            "calibrate_seconds": timed(["calibrate", *common, "--out",
                                        str(tmp / "proposal-timing")])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=3000)
    parser.add_argument("--seed-a", type=int, default=101)
    parser.add_argument("--seed-b", type=int, default=202)
    parser.add_argument("--as-of-days", type=float, default=14)
    parser.add_argument("--within-days", type=float, default=30)
    parser.add_argument("--timing-persons", type=int, default=20_000)
    args = parser.parse_args()
    rules = load_rules(MAPPINGS)
    docs_a, world_a = world(args.seed_a, args.leads, args.as_of_days, args.within_days, rules)
    docs_b, world_b = world(args.seed_b, args.leads, args.as_of_days, args.within_days, rules)
    train, test = labelled(docs_a, rules), labelled(docs_b, rules)
    with tempfile.TemporaryDirectory(prefix="syncagent-calibrate-") as tmp:
        made = propose(train, rules, MAPPINGS, Path(tmp) / "proposal", Targets())
        shipped = report(score_persons(test, rules), 500)
        calibrated = report(score_persons(test, made.rules), 500)
        labels = score_persons(test, rules).outcome
        regression = auc(made.fitted.predict_plain(extract(test, rules)), labels)
        times = timing(docs_a + docs_b, args.timing_persons, Path(tmp)) \
            if args.timing_persons else None
    print(json.dumps({
        "train": world_a, "test": world_b,
        "auc_on_test": {"shipped": shipped["auc"]["score"],
                        "calibrated": calibrated["auc"]["score"],
                        "logistic_regression": round(regression, 4)},
        "calibrated_minus_shipped": round(calibrated["auc"]["score"]["auc"]
                                          - shipped["auc"]["score"]["auc"], 4),
        "regression_minus_calibrated": round(regression - calibrated["auc"]["score"]["auc"], 4),
        "mql_on_test": {"shipped": shipped["mql"], "calibrated": calibrated["mql"]},
        "chosen": {"half_life_days": made.fitted.half_life_days,
                   "recency": made.fitted.recency.describe(),
                   "early_days": made.fitted.early_days, "mql_min_score": made.threshold},
        "timing": times,
    }, indent=2))


if __name__ == "__main__":
    main()
