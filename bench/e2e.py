"""End-to-end benchmark: a 20,000-lead backfill, then the form-fill-to-Salesforce latency.

The sandbox runs in this process with 100 ms of latency on every Salesforce call and HubSpot's
100-requests-per-10-seconds limit; the agent runs as a child process (so its peak RSS is its
own), exactly as `syncagent sync --once --sandbox URL` and `syncagent run` would. Prints JSON:

- calls against the minimum, per system and per operation (``minimum_by_operation``: each
  operation's calls, its minimum, the reason and the ratio; bench/e2e_floor.py). What must be
  read is counted in the sandbox before the backfill (contacts, owners, web events, the
  engagements that are scoring signals), what must be written from the outbox rows it sent;
  the minimum applies the documented page and batch sizes to them (HubSpot: search 200,
  events 1,000, association reads 1,000 ids, batch writes 100, list changes 1,000;
  Salesforce: query pages 2,000, collections 200, five of either in one Composite call);
- wall time against the lower bound those minimums imply (``lower_bound_s``, its parts in
  ``lower_bound_parts_s``; bench/e2e_floor.py ``lower_bound``):
  max(SF reads, HS reads) + max(SF writes, HS writes), where SF x is the minimum Salesforce
  calls of x one after another at the latency, HS reads is max(minimum non-search reads at
  the ten-second limit, minimum searches at the per-second search limit), HS writes the
  minimum writes at the ten-second limit. Reads precede writes (a write needs a decision,
  a decision every read); the systems may run side by side within a phase; searches have a
  limit of their own and do not count against the ten-second one;
- the agent's peak RSS;
- the end-to-end latency from a simulated HubSpot form fill to grade, score and owner being
  visible on the Salesforce lead, with `syncagent run` on a short interval; ``steps``: the
  cycles around the fill and the lead's write, in seconds after it, and the calls made until
  the lead showed the change (bench/e2e_latency.py);
- task calls against the minimum, per system, from the sandbox's own stats, for the backfill
  cycle (``backfill.tasks``) and the whole run (``tasks_whole_run``): the tasks the agent
  created (alerts, SLA steps) need ceil(n/200) Salesforce calls and ceil(n/100) HubSpot calls
  per cycle; HubSpot's look-ups before a create (the agent's key on tasks already on the
  contacts) are reported beside them.

    python bench/e2e.py [--leads 20000] [--latency-ms 100] [--interval 10] [--backfill-only]
                        [--timeline]

``host``: the CPU time of two fixed workloads before and after (bench/host.py), to compare
before comparing two runs' wall times on a shared machine.

``--timeline`` adds when each call and each cycle phase happened (bench/e2e_timeline.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from state.store import StateStore  # noqa: E402
from syncagent.engine import load_rules  # noqa: E402
from syncagent.engine.operators import GRADE_RANK  # noqa: E402

sys.path.insert(1, str(ROOT / "bench"))
from e2e_floor import (  # noqa: E402
    HS_BATCH,
    SF_BATCH,
    hubspot_floor,
    lower_bound,
    portal_truth,
    salesforce_floor,
    sent_rows,
    totals,
)
from e2e_latency import calls_now, calls_since, steps  # noqa: E402
from host import probe  # noqa: E402
from proctree import TreeMemory, peak_rss_mb  # noqa: E402

if TYPE_CHECKING:
    from syncagent.sandbox.server import RunningSandbox

TIMELINE_ENV = "SYNCAGENT_BENCH_TIMELINE"
PROFILE_ENV = "SYNCAGENT_BENCH_PROFILE"   # a folder: cProfile the child (bench/e2e_profile.py)


def child_cycle(sandbox_url: str, state_url: str) -> None:
    """Run in the child: one cycle against the sandbox, then print what it did and cost."""
    from syncagent import memory
    from syncagent.pipeline.agent import build_agent, sandbox_settings, save_usage
    from syncagent.pipeline.cycle import run_cycle
    from syncagent.settings import load_settings

    memory.limit_arenas()     # as `syncagent` does (cli.main), before any thread starts
    timeline = sampler = rss = None
    if os.environ.get(TIMELINE_ENV):
        from e2e_timeline import RssSampler, StackSampler, instrument_child
        timeline, sampler, rss = instrument_child(), StackSampler(), RssSampler()
        sampler.start()
        rss.start()
    profiles = None
    if os.environ.get(PROFILE_ENV):
        from e2e_profile import ThreadProfiles
        profiles = ThreadProfiles()
        profiles.start()
    settings = load_settings(None, state_url=state_url, mappings_dir=ROOT / "mappings",
                             **sandbox_settings(sandbox_url))
    agent = build_agent(settings)
    try:
        report = run_cycle(agent)
    finally:
        # as `sync --once` does: what the connectors learnt (the moments HubSpot stamped the
        # agent's own writes among them) is there for the `run` process after it
        save_usage(agent)
    if profiles is not None:
        profiles.dump(os.environ[PROFILE_ENV])
    print(json.dumps({
        "report": report.as_json(), "list_changes": report.list_changes,
        "by_operation": {c.system: c.calls.by_operation() for c in agent.connectors.values()},
        "peak_rss_mb": peak_rss_mb(),
        "timeline": timeline.as_json() if timeline is not None else None,
        "stacks": sampler.stop() if sampler is not None else None,
        "rss": rss.stop() if rss is not None else None,
    }))


def _cpu_seconds() -> dict[str, float]:
    """User plus system CPU seconds of this process (the sandbox) and of its waited-for
    children (the agent)."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                          resource.RUSAGE_CHILDREN))
    return {"agent": children.ru_utime + children.ru_stime,
            "sandbox": own.ru_utime + own.ru_stime}


def backfill(sandbox: RunningSandbox, state_url: str, latency_s: float,
             per_10s: int, searches_per_s: int, calls_log: list[Any] | None = None
             ) -> dict[str, Any]:
    truth = portal_truth(sandbox.ctx)     # what the backfill must read, before it starts
    env = {**os.environ, TIMELINE_ENV: "1" if calls_log is not None else ""}
    started, cpu_before = time.monotonic(), _cpu_seconds()
    command = [sys.executable, __file__, "--child-cycle", sandbox.url, state_url]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=ROOT, env=env) as proc, TreeMemory(proc.pid, every=0.5) as tree:
        stdout, stderr = proc.communicate()
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, command, stdout, stderr)
    ended, cpu_after = time.monotonic(), _cpu_seconds()
    wall = ended - started
    child = json.loads(stdout.strip().splitlines()[-1])
    report = child["report"]
    sent = sent_rows(state_url.removeprefix("sqlite:///"))
    by_op = child["by_operation"]
    ops = {"salesforce": salesforce_floor(report["pulled"], sent, by_op.get("salesforce", {})),
           "hubspot": hubspot_floor(truth, sent, by_op.get("hubspot", {}))}
    minimum = {system: totals(table)["minimum"] for system, table in ops.items()}
    calls = report["api_calls"]
    bound, parts = lower_bound(ops, latency_s, per_10s, searches_per_s)
    return {
        "rows_pulled": sum(report["pulled"].values()),
        "persons_evaluated": report["persons_evaluated"],
        "written": report["written"], "created": report["created"],
        "rejected": report["rejected"],
        "calls": {s: {"calls": calls[s], "minimum": minimum[s],
                      "ratio": round(calls[s] / max(1, minimum[s]), 3)} for s in calls},
        "calls_without_composite_packing": {"salesforce": totals(
            ops["salesforce"], without_composite=True)},
        "minimum_by_operation": ops,
        "calls_by_operation": by_op,
        "wall_s": round(wall, 1), "lower_bound_s": round(bound, 1),
        "lower_bound_parts_s": parts,
        "wall_vs_bound": round(wall / max(bound, 0.001), 2),
        "peak_rss_mb": child["peak_rss_mb"],
        # the agent with its evaluation workers (forked: RSS counts shared pages in each
        # process, PSS splits them; sampled every 0.5 s, so a short peak may be missed)
        "tree_peak_rss_mb": round(tree.rss_kb / 1024, 1),
        "tree_peak_pss_mb": round(tree.pss_kb / 1024, 1),
        # at that PSS peak: the agent's own PSS, and what its workers hold privately (their
        # allocations and their copies of pages either process wrote since the fork)
        "tree_at_pss_peak_mb": tree.peak_parts_mb(),
        # CPU seconds the agent (child) and the sandbox (this process) spent on the backfill:
        # beside wall_s, what part of it was work rather than waiting (on 2 shared cores)
        "cpu_s": {who: round(cpu_after[who] - cpu_before[who], 1) for who in cpu_after},
        # one cycle: its tasks are the ones a single push could batch together
        "tasks": task_calls(sandbox.stats()),
        **({"timeline": timeline(calls_log, started, ended,
                                 {**child["timeline"], "stacks": child["stacks"],
                                  "rss": child["rss"]})}
           if calls_log is not None else {}),
    }


def timeline(calls_log: list[Any], started: float, ended: float, child: dict[str, Any]
             ) -> dict[str, Any]:
    from e2e_timeline import per_second, summarize

    out = summarize(calls_log, started, ended, child["phases"], child["rss"])
    # per second too: the phases of a small backfill are shorter than ten seconds
    # (bench/e2e_phases.py turns them into a table of calls per phase against the limits)
    out["per_s"] = per_second(calls_log, started, ended)
    out["stacks"] = child["stacks"]
    if child.get("tracemalloc"):
        out["tracemalloc"] = [{**snap, "at": round(snap["at"] - started, 1)}
                              for snap in child["tracemalloc"]]
    out["streams"] = {name: {"pages": s["pages"], "first": round(s["first"] - started, 1),
                             "last": round(s["last"] - started, 1)}
                      for name, s in child["streams"].items()}
    out["cpu_by_step"] = child["cpu_by_step"]
    return out


def task_calls(stats: dict[str, Any]) -> dict[str, Any]:
    """Task creates and the calls that carried them, per system, against the minimum the
    batch sizes allow (the sandbox counts them: /__sandbox/stats)."""
    made, calls = stats.get("tasks_created") or {}, stats.get("task_calls") or {}
    out: dict[str, Any] = {}
    for system, size in (("salesforce", SF_BATCH), ("hubspot", HS_BATCH)):
        n, used = int(made.get(system, 0)), int(calls.get(system, 0))
        least = -(-n // size)
        out[system] = {"tasks_created": n, "calls": used, "minimum": least,
                       "ratio": round(used / least, 3) if least else None}
    out["hubspot"]["lookup_calls"] = sum(
        c["count"] for c in stats.get("calls") or [] if c["system"] == "hubspot"
        and c["path"].endswith(("/objects/tasks/batch/read", "/contacts/tasks/batch/read")))
    return out


def _candidate(store: StateStore, mql_min_rank: int) -> tuple[str, str]:
    """A person on both systems, not MQL yet, whose grade meets the MQL grade of the rules the
    agent runs (a form fill's points then make the MQL): (SF lead id, contact id). A first
    letter of A or B is not enough: B- is below the shipped rules' B."""
    refs: dict[int, dict[str, str]] = {}
    for (system, obj, rid), pid in store.persons.links().items():
        refs.setdefault(pid, {})[f"{system}.{obj}"] = rid
    for pid, decision in sorted(store.decisions.of().items()):
        both = refs.get(pid, {})
        if GRADE_RANK.get(decision["grade"] or "F", 0) >= mql_min_rank \
                and decision["stage"] in ("Lead", "Inquiry") \
                and "salesforce.Lead" in both and "hubspot.contacts" in both:
            return both["salesforce.Lead"], both["hubspot.contacts"]
    raise SystemExit("no candidate person for the latency measurement")


def latency(sandbox: RunningSandbox, state_url: str, interval: int) -> dict[str, Any]:
    """Seconds from a HubSpot form fill to grade, score and owner visible on the SF lead."""
    mql_min_rank = load_rules(ROOT / "mappings").compiled.lifecycle.mql_min_rank
    lead_id, contact_id = _candidate(StateStore(state_url), mql_min_rank)
    env = {**os.environ, "SYNCAGENT_INTERVAL_SECONDS": str(interval),
           "SYNCAGENT_JITTER_SECONDS": "0", "SYNCAGENT_LOG_LEVEL": "warning"}
    agent = subprocess.Popen([sys.executable, "-m", "syncagent", "run", "--sandbox", sandbox.url,
                              "--state", state_url, "--mappings", str(ROOT / "mappings")],
                             env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        settled_after = _wait_for_quiet(state_url)
        ctx = sandbox.ctx
        filled, filled_at = time.perf_counter(), datetime.now(UTC)
        with ctx.lock:
            calls_before = calls_now(ctx)
            now = ctx.clock.now()
            for minute in range(4):
                ctx.hs.add_event("e_submitted_form", int(contact_id),
                                 now - timedelta(seconds=minute),
                                 {"hs_form_title": "Demo Request",
                                  "hs_url": "https://www.example-vendor.com/demo-request"})
        seen = _wait_for_mql(sandbox, lead_id, timeout=interval * 3 + 60)
        waited = time.perf_counter() - filled
        with ctx.lock:
            calls = calls_since(calls_before, ctx)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=120)
    return {"interval_s": interval, "form_fill_to_salesforce_s": round(waited, 1),
            "target_s": interval + 10, "cycles_before_quiet": settled_after, "visible": seen,
            "steps": steps(state_url, lead_id, filled_at), "calls_until_visible": calls}


def _wait_for_quiet(state_url: str, timeout: float = 900) -> int:
    """Wait until a `run` cycle pulls next to nothing: the backfill's own writes are read back
    for one lookback window after it (cursors re-read that window, for late commits), so the
    latency is measured in the steady state an operator lives in. Returns the cycles seen."""
    store = StateStore(state_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        finished = [run for run in store.runs.recent(100)[:-1] if run["finished_at"]]
        if finished and finished[0]["counts"].get("pulled", 10**9) <= 50:
            return len(finished)
        time.sleep(0.5)
    raise SystemExit("the agent did not settle in time")


def _wait_for_mql(sandbox: RunningSandbox, lead_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sandbox.ctx.lock:
            lead = sandbox.ctx.sf.get("Lead", lead_id) or {}
        if lead.get("Lifecycle_Stage__c") == "MQL" and lead.get("OwnerId"):
            return {k: lead.get(k) for k in ("Lead_Grade__c", "Lead_Score__c",
                                             "Lifecycle_Stage__c", "OwnerId", "MQL_Date__c")}
        time.sleep(0.25)
    raise SystemExit(f"lead {lead_id} did not become MQL within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--hs-per-10s", type=int, default=100)
    parser.add_argument("--hs-searches-per-s", type=int, default=5)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--backfill-only", action="store_true",
                        help="skip the form-fill latency run after the backfill")
    parser.add_argument("--timeline", action="store_true",
                        help="also print when each call and each cycle phase happened")
    parser.add_argument("--child-cycle", nargs=2, metavar=("SANDBOX_URL", "STATE_URL"))
    args = parser.parse_args()
    if args.child_cycle:
        child_cycle(*args.child_cycle)
        return
    # Imported here, not at the top: the child (the agent) must not carry the sandbox's
    # modules, or its peak RSS would not be the agent's own.
    from syncagent.logging import configure_logging
    from syncagent.sandbox.common import FaultProfile, SystemFaults
    from syncagent.sandbox.server import start_sandbox

    configure_logging()   # the sandbox's log lines to stderr: stdout is the JSON alone

    host = {"before": probe()}
    calls_log = None
    if args.timeline:
        from e2e_timeline import record_sandbox_calls
        calls_log = record_sandbox_calls()
    faults = FaultProfile(salesforce=SystemFaults(latency_ms=args.latency_ms),
                          hubspot_requests_per_10s=args.hs_per_10s,
                          hubspot_searches_per_second=args.hs_searches_per_s)
    with tempfile.TemporaryDirectory() as folder, \
            start_sandbox(leads=args.leads, seed=7, faults=faults) as sandbox:
        state_url = f"sqlite:///{folder}/state.db"
        StateStore(state_url).upgrade()
        figures: dict[str, Any] = {"leads": args.leads, "salesforce_latency_ms": args.latency_ms,
                                   "hubspot_requests_per_10s": args.hs_per_10s,
                                   "hubspot_searches_per_second": args.hs_searches_per_s}
        figures["backfill"] = backfill(sandbox, state_url, args.latency_ms / 1000,
                                       args.hs_per_10s, args.hs_searches_per_s, calls_log)
        if not args.backfill_only:
            figures["latency"] = latency(sandbox, state_url, args.interval)
        # the backfill and the `run` cycles after it: each cycle with tasks needs a call of
        # its own, so the whole run's ratio may exceed the batch-size minimum honestly
        figures["tasks_whole_run"] = task_calls(sandbox.stats())
    figures["host"] = {**host, "after": probe()}
    print(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()
