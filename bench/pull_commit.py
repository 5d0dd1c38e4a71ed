"""What the state DB's writes cost in a backfill: the CPU of ``pull.commit`` (a page's
mirror rows, activities, match queue and cursor) and of the mirror half of a push record
(``MirrorStore.record_written``), on SQLite, at one size.

The sandbox runs in this process with no latency and no rate limits (``--limits``: those of
bench/e2e.py, to see where the e2e pull's time goes); the agent's pull runs in
a child process (its CPU, thread CPU and peak RSS are its own). After the pull, the child
records a write of the fields a backfill writes onto every person record, 200 records a call
(one push batch), as push does after each successful write. Prints JSON:

- ``pull_commit_cpu_s``: thread CPU in ``pull.commit``; ``record_written_cpu_s``: in
  ``record_written``; ``child_cpu_s``: the child's user + system CPU;
- ``waited_s`` / ``stored_s``: per system, its pull thread waiting for the next page /
  storing pages; ``readers_blocked_s``: per HubSpot stream, its reader's time blocked handing
  a page over (the store was behind);
- ``peak_rss_mb``: the child's high-water RSS; ``db_mb``: the state DB's size after.

    python bench/pull_commit.py [--leads 20000] [--limits]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.proctree import peak_rss_mb  # noqa: E402

PRAGMAS_ENV = "SYNCAGENT_BENCH_PRAGMAS"
BATCH = 200          # one push batch: what push records at a time
REASONS = "; ".join(f"+{n} points: visited the pricing page {n} times" for n in range(12))


def _written(system: str) -> dict[str, Any]:
    """What a backfill writes onto a person record (the shape, not the values, matters)."""
    if system == "salesforce":
        return {"Lead_Grade__c": "B", "Lead_Score__c": 42, "Lifecycle_Stage__c": "Inquiry",
                "Segment__c": "Mid-market", "Nurture_Track__c": "Evaluate",
                "Score_Reasons__c": REASONS, "Syncagent_Id__c": "p-000001"}
    return {"syncagent_grade": "B", "syncagent_score": 42, "syncagent_stage": "Inquiry",
            "syncagent_segment": "Mid-market", "syncagent_track": "Evaluate",
            "syncagent_reasons": REASONS}


def child(sandbox_url: str, state_url: str, profile: str | None = None) -> None:
    import cProfile

    from syncagent import memory
    from syncagent.pipeline import pull as pull_module
    from syncagent.pipeline.agent import build_agent, sandbox_settings
    from syncagent.settings import load_settings

    memory.limit_arenas()
    _extra_pragmas(os.environ.get(PRAGMAS_ENV, ""))
    spent = {"commit": 0.0}
    original = pull_module.commit
    profiles: dict[int, cProfile.Profile] = {}

    def commit(*args: Any, **kwargs: Any) -> Any:
        began = time.thread_time()
        profiler = None
        if profile:
            profiler = profiles.setdefault(threading.get_ident(),
                                           cProfile.Profile(time.thread_time))
            profiler.enable()
        try:
            return original(*args, **kwargs)
        finally:
            if profiler is not None:
                profiler.disable()
            spent["commit"] += time.thread_time() - began

    pull_module.commit = commit
    blocked = _time_handoff()
    settings = load_settings(None, state_url=state_url, mappings_dir=ROOT / "mappings",
                             **sandbox_settings(sandbox_url))
    agent = build_agent(settings)
    began = time.monotonic()
    result = pull_module.pull(list(agent.connectors.values()), agent.store, datetime.now(UTC),
                              threading.Event())
    pulled_s = time.monotonic() - began
    io = _io()
    if profile:
        _dump(profiles, profile)
    written_cpu = _record_all(agent.store)
    times = os.times()
    print(json.dumps({"pulled": sum(result.counts.values()), "pull_wall_s": round(pulled_s, 1),
                      "pull_commit_cpu_s": round(spent["commit"], 2),
                      # per system: its pull thread waiting for a page / storing pages; the
                      # HubSpot readers blocked handing a page over (the queue was full)
                      "waited_s": result.waited_s, "stored_s": result.stored_s,
                      "readers_blocked_s": {k: round(v, 1) for k, v in blocked.items()},
                      "record_written_cpu_s": round(written_cpu, 2),
                      "child_cpu_s": round(times.user + times.system, 1),
                      "peak_rss_mb": peak_rss_mb(),
                      # bytes read and written by the pull's syscalls (the DB's page reads
                      # and WAL writes; the HTTP traffic is the same in every variant)
                      "pull_read_mb": round(io["rchar"] / 2**20, 1),
                      "pull_written_mb": round(io["wchar"] / 2**20, 1),
                      "pull_read_calls": io["syscr"], "pull_write_calls": io["syscw"]}))


def _time_handoff() -> dict[str, float]:  # stream -> seconds
    """Time the HubSpot readers spend blocked handing pages to the pull thread: the
    hand-off queue of connectors/hubspot/concurrent.py, timed by a subclass."""
    import queue
    import types

    from connectors.hubspot import concurrent

    blocked: dict[str, float] = {}
    lock = threading.Lock()

    class TimedQueue(queue.Queue):  # type: ignore[type-arg]
        def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
            began = time.monotonic()
            try:
                super().put(item, block, timeout)
            finally:
                stream = getattr(item, "stream", "(end)")
                with lock:
                    blocked[stream] = blocked.get(stream, 0.0) + time.monotonic() - began

    concurrent.queue = types.SimpleNamespace(  # type: ignore[assignment]
        Queue=TimedQueue, Full=queue.Full)
    return blocked


def _extra_pragmas(pragmas: str) -> None:
    """Run these ``;``-separated pragmas on each new connection after the shipped ones (to
    compare settings without editing state/db.py)."""
    if not pragmas.strip():
        return
    from state import db

    shipped = db._sqlite_pragmas

    def both(connection: Any, record: Any) -> None:
        shipped(connection, record)
        cursor = connection.cursor()
        for pragma in pragmas.split(";"):
            if pragma.strip():
                cursor.execute(f"PRAGMA {pragma.strip()}")
        cursor.close()

    db._sqlite_pragmas = both   # type: ignore[assignment]


def _record_all(store: Any) -> float:
    """Record the backfill's write onto every person record, as push does; thread CPU."""
    spent = 0.0
    for system, object_name in (("salesforce", "Lead"), ("hubspot", "contacts")):
        ids = [row.remote_id for row in store.mirror.iter_records(system, object_name)]
        # push writes in outbox order (by person), not in id order
        ids.sort(key=lambda rid: hash(rid))
        values = _written(system)
        for start in range(0, len(ids), BATCH):
            writes = {rid: dict(values) for rid in ids[start:start + BATCH]}
            began = time.thread_time()
            store.mirror.record_written(system, object_name, writes)
            spent += time.thread_time() - began
    return spent


def _dump(profiles: dict[int, Any], path: str) -> None:
    import pstats

    merged: pstats.Stats | None = None
    for profiler in profiles.values():
        if merged is None:
            merged = pstats.Stats(profiler)
        else:
            merged.add(profiler)
    if merged is not None:
        merged.dump_stats(path)


def _io() -> dict[str, int]:
    found = {}
    for line in Path("/proc/self/io").read_text().splitlines():
        name, _, value = line.partition(":")
        found[name] = int(value)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--keep", type=Path, help="copy the state DB here after the run")
    parser.add_argument("--pragmas", default="",
                        help="extra SQLite pragmas for the agent, e.g. 'cache_size=-16000'")
    parser.add_argument("--drop-index", action="append", default=[],
                        help="drop this index after the upgrade (to weigh what it costs)")
    parser.add_argument("--profile", help="cProfile pull.commit (thread CPU) into this file")
    parser.add_argument("--limits", action="store_true",
                        help="bench/e2e.py's API limits and latency (100 ms Salesforce, "
                             "HubSpot 100 calls per 10 s and 5 searches a second)")
    parser.add_argument("--child", nargs=2, metavar=("SANDBOX_URL", "STATE_URL"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], profile=args.profile)
        return
    from state.store import StateStore
    from syncagent.sandbox.common import FaultProfile, SystemFaults
    from syncagent.sandbox.server import start_sandbox

    faults = FaultProfile(hubspot_requests_per_10s=10**9, hubspot_searches_per_second=10**9,
                          hubspot_daily_limit=10**9, salesforce_daily_quota=10**9)
    if args.limits:
        faults = FaultProfile(salesforce=SystemFaults(latency_ms=100),
                              hubspot_requests_per_10s=100, hubspot_searches_per_second=5)
    with tempfile.TemporaryDirectory() as folder, \
            start_sandbox(leads=args.leads, seed=7, faults=faults) as sandbox:
        path = Path(folder) / "state.db"
        state_url = f"sqlite:///{path}"
        store = StateStore(state_url)
        store.upgrade()
        with store.engine.begin() as connection:
            for name in args.drop_index:
                connection.exec_driver_sql(f"DROP INDEX {name}")
        store.dispose()
        extra = ["--profile", args.profile] if args.profile else []
        out = subprocess.run([sys.executable, __file__, "--child", sandbox.url, state_url,
                              *extra],
                             capture_output=True, text=True, check=True, cwd=ROOT,
                             env={**os.environ, PRAGMAS_ENV: args.pragmas})
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        if args.keep is not None:
            import shutil
            shutil.copyfile(path, args.keep)
        figures["db_mb"] = round(sum(p.stat().st_size for p in Path(folder).iterdir()) / 2**20,
                                 1)
    print(json.dumps({"leads": args.leads, "limits": args.limits, "pragmas": args.pragmas,
                      "dropped": args.drop_index, **figures}, indent=2))


if __name__ == "__main__":
    main()
