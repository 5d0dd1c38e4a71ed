"""Convergence benchmark: after a backfill the agent has nothing left to write, and an idle
cycle costs almost nothing.

For each seed (none of them used by the tests) a fresh sandbox with 3,000 leads is served in
this process and the agent runs three cycles through the real CLI
(`syncagent sync --once --json --sandbox URL`), each a process of its own, as an operator
would run them. Prints one JSON object per seed, then a summary:

- ``writes_planned_cycle2``: outbox rows queued by the cycle right after the backfill (each
  row is one record or list membership to write); must be 0;
- ``salesforce_calls_cycle3``: API calls of the next cycle, nothing having changed anywhere;
  must be <= 1;
- ``hubspot_calls_cycle3``: the same for HubSpot; must be <= the number of HubSpot streams.

    python bench/convergence.py [--leads 3000] [--seeds 1009 2003 3001 4007 5003]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, or_, select  # noqa: E402

from connectors.hubspot.streams import STREAMS as HUBSPOT_STREAMS  # noqa: E402
from state import models  # noqa: E402
from state.store import StateStore  # noqa: E402

SEEDS = (1009, 2003, 3001, 4007, 5003)


def cycle(sandbox_url: str, state_url: str) -> dict[str, Any]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SYNCAGENT_")},
           "SYNCAGENT_LOG_LEVEL": "warning"}
    done = subprocess.run(
        [sys.executable, "-m", "syncagent", "sync", "--once", "--json", "--sandbox",
         sandbox_url, "--state", state_url, "--mappings", str(ROOT / "mappings")],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"sync --once failed ({done.returncode}): {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def rows_queued_since(store: StateStore, moment: datetime) -> int:
    """Outbox rows queued or re-armed at or after ``moment`` (a row per write)."""
    table = models.OutboxRow
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(
            or_(table.created_at >= moment, table.updated_at >= moment))).scalar() or 0)


def one_seed(seed: int, leads: int) -> dict[str, Any]:
    from syncagent.sandbox.server import start_sandbox

    sandbox = start_sandbox(leads=leads, seed=seed)
    try:
        with tempfile.TemporaryDirectory(prefix="syncagent-convergence-") as tmp:
            state_url = f"sqlite:///{Path(tmp) / 'state.db'}"
            store = StateStore(state_url)
            try:
                store.upgrade()
                first = cycle(sandbox.url, state_url)
                before_second = datetime.now(UTC)
                second = cycle(sandbox.url, state_url)
                queued = rows_queued_since(store, before_second)
                third = cycle(sandbox.url, state_url)
            finally:
                store.dispose()
    finally:
        sandbox.stop()
    streams = len(HUBSPOT_STREAMS)
    result = {
        "seed": seed, "leads": leads,
        "cycle1": {"written": first["written"], "created": first["created"],
                   "api_calls": first["api_calls"]},
        "writes_planned_cycle2": queued,
        "cycle2": {"written": second["written"], "created": second["created"],
                   "api_calls": second["api_calls"]},
        "salesforce_calls_cycle3": third["api_calls"]["salesforce"],
        "hubspot_calls_cycle3": third["api_calls"]["hubspot"],
        "hubspot_streams": streams,
    }
    result["ok"] = (queued == 0 and result["salesforce_calls_cycle3"] <= 1
                    and result["hubspot_calls_cycle3"] <= streams)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=3000)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    args = parser.parse_args()
    results = []
    for seed in args.seeds:
        result = one_seed(seed, args.leads)
        results.append(result)
        print(json.dumps(result), flush=True)
    print(json.dumps({"summary": {
        "seeds": len(results), "all_ok": all(r["ok"] for r in results),
        "writes_planned_cycle2_max": max(r["writes_planned_cycle2"] for r in results),
        "salesforce_calls_cycle3_max": max(r["salesforce_calls_cycle3"] for r in results),
        "hubspot_calls_cycle3_max": max(r["hubspot_calls_cycle3"] for r in results),
        "hubspot_streams": len(HUBSPOT_STREAMS)}}), flush=True)


if __name__ == "__main__":
    main()
