"""Connector benchmark: API calls against the fewest the APIs allow, and records/s.

Runs against in-process sandboxes through the real client libraries and prints one JSON
document: per system and operation, ``calls`` (what the connector made) and ``minimum``
(what the API's batch sizes allow), plus records/s with 100 ms injected latency per call.

    .venv/bin/python bench/connectors.py            # full sizes (20,000 leads; ~2-4 minutes)
    .venv/bin/python bench/connectors.py --quick    # small sizes, for a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog

from connectors import sandbox as sandbox_settings
from connectors.base import Cursor, RemoteRecord, WriteItem
from connectors.budget import DailyBudget
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.limits import BATCH_MAX, SEARCH_PAGE
from connectors.hubspot.profile import OUTPUTS as HS_OUTPUTS
from connectors.retry import RetryPolicy
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.connector import SalesforceConnector, with_options
from connectors.salesforce.limits import COLLECTION_MAX, QUERY_PAGE
from connectors.salesforce.profile import OUTPUTS as SF_OUTPUTS
from connectors.salesforce.streams import STREAMS as SF_STREAMS
from syncagent.errors import BudgetExhausted
from syncagent.sandbox.common import FaultProfile
from syncagent.sandbox.server import RunningSandbox, start_sandbox

HOT = ("Lead", "Contact", "Task", "Event", "CampaignMember")
FAULTS = {"rate_500": 0.10, "rate_429": 0.05, "rate_hang": 0.02, "hang_seconds": 3,
          "rate_reject": 0.03}


def _retry() -> RetryPolicy:
    # Real waits, but capped: the sandbox asks for Retry-After: 1 on every injected fault.
    return RetryPolicy(attempts=10, base_seconds=0.05, max_backoff_seconds=0.5,
                       max_retry_after_seconds=0.5, rng=random.Random(1))


def _sf(box: RunningSandbox, *, streams: Any = SF_STREAMS, budget: DailyBudget | None = None,
        **overrides: Any) -> SalesforceConnector:
    settings = sandbox_settings.salesforce_settings(box.info, **overrides)
    client = SalesforceClient(settings, ca_bundle=box.ca_cert, retry=_retry(), budget=budget)
    return SalesforceConnector(client, lookback=timedelta(seconds=300), stream_table=streams)


def _hs(box: RunningSandbox, **overrides: Any) -> HubSpotConnector:
    settings = sandbox_settings.hubspot_settings(box.info, **overrides)
    client = HubSpotClient(settings, ca_bundle=box.ca_cert, retry=_retry())
    return HubSpotConnector(client, lookback=timedelta(seconds=120))


def _reads(conn: Any) -> int:
    return conn.calls.total - conn.calls.by_operation().get("login", 0)


def _latency(box: RunningSandbox, ms: float) -> None:
    box.set_faults({"salesforce": {"latency_ms": ms}, "hubspot": {"latency_ms": ms},
                    "hubspot_requests_per_10s": 1000, "hubspot_searches_per_second": 5})


def salesforce(leads: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    box = start_sandbox(leads=leads, seed=11)
    try:
        _latency(box, 100)
        # the seed load stamps every SystemModstamp "now": let it age past the lookback, as
        # data in a real org has, so the first incremental read is not a re-read of the load
        box.ctx.clock.advance(900)
        rows = {s.name: sum(1 for _ in box.ctx.sf.records(s.object)) for s in SF_STREAMS}
        conn = _sf(box, timeout_seconds=2.0)          # shorter than the injected 3 s hangs
        started = time.monotonic()
        cursors: dict[str, Cursor | None] = {name: None for name in conn.streams}
        emitted = 0
        for page in conn.read_many(cursors, cycle_start=box.ctx.clock.now()):
            cursors[page.stream] = page.cursor
            emitted += len(page.records)
        elapsed = time.monotonic() - started
        out["backfill_read"] = {
            "rows": rows, "calls": _reads(conn),
            "minimum": sum(math.ceil(n / QUERY_PAGE) for n in rows.values()),   # the bound
            "note": "first pages of 5 streams share one Composite call",
            "records_per_s_at_100ms": round(emitted / elapsed)}
        for label, names in (("incremental_nothing_changed_5_streams", HOT),
                             ("incremental_nothing_changed_8_streams", tuple(conn.streams))):
            conn.calls.reset()
            list(conn.read_many({n: cursors[n] for n in names},
                                cycle_start=box.ctx.clock.now()))
            out[label] = {"calls": _reads(conn), "minimum": 1}

        ids = [r["Id"] for r in box.ctx.sf.records("Lead") if not r.get("IsConverted")]
        ids = (ids * math.ceil(20_000 / max(len(ids), 1)))[:20_000] if leads >= 20_000 else ids
        items = [WriteItem(fields={SF_OUTPUTS["score"]: n % 100}, id=i) for n, i in enumerate(ids)]
        conn.calls.reset()
        started = time.monotonic()
        results = conn.write("Lead", "update", items)
        elapsed = time.monotonic() - started
        out["update"] = {"records": len(items), "calls": _reads(conn),
                         "minimum": math.ceil(len(items) / COLLECTION_MAX),
                         "ok": sum(r.ok for r in results),
                         "records_per_s_at_100ms": round(len(items) / elapsed)}
        out["update_under_faults"] = _writes_under_faults(box, conn, items[:5000], "salesforce")
        out["budget_quota_1000_share_20pct"] = _budget(box)
    finally:
        box.stop()
    return out


def _writes_under_faults(box: RunningSandbox, conn: Any, items: list[WriteItem],
                         system: str) -> dict[str, Any]:
    box.set_faults({"seed": 9, system: FAULTS, "hubspot_requests_per_10s": 1000,
                    "hubspot_searches_per_second": 5})
    conn.calls.reset()
    obj = "Lead" if system == "salesforce" else "contacts"
    pending, final, rounds = items, Counter[str](), 0
    reasons: Counter[str] = Counter()
    while pending and rounds < 6:
        rounds += 1
        results = conn.write(obj, "update", pending)
        retry_ids = {r.ref.id for r in results if r.status == "retryable"}
        pending = [i for i in pending if i.id in retry_ids]
        for r in results:
            if r.status != "retryable":
                final[r.status] += 1
                if r.status == "rejected":
                    reasons[str(r.code)] += 1
    box.set_faults({"hubspot_requests_per_10s": 1000, "hubspot_searches_per_second": 5})
    return {"records": len(items), "calls_including_retries": _reads(conn),
            "minimum": math.ceil(len(items) / (COLLECTION_MAX if system == "salesforce"
                                               else BATCH_MAX)),
            "ok": final["ok"], "rejected_with_reason": final["rejected"],
            "still_retryable": len(pending), "rounds": rounds,
            "rejection_codes": dict(reasons)}


def _budget(box: RunningSandbox) -> dict[str, Any]:
    """Quota 1,000, share 20%: at most 200 calls, a clean stop, an exact resume."""
    box.set_faults({"salesforce_daily_quota": 1000})
    # 200-row batches: a backfill needs far more than 200 calls, so the budget must stop it
    streams = tuple(with_options(s, batch_size=200) for s in SF_STREAMS)
    conn = _sf(box, streams=streams, daily_budget_share=0.2)
    cursors: dict[str, Cursor | None] = {s.name: None for s in streams}
    first: dict[str, list[str]] = {s.name: [] for s in streams}
    status = "completed"
    try:
        for page in conn.read_many(cursors, cycle_start=box.ctx.clock.now()):
            first[page.stream] += [r.id for r in page.records]
            cursors[page.stream] = page.cursor
    except BudgetExhausted as exc:
        status = f"BudgetExhausted: {exc.message}"
    calls = _reads(conn)
    # the next run, once the rolling window has room again, resumes from the committed cursors
    box.set_faults({"salesforce_daily_quota": 100_000})
    nxt = _sf(box, streams=streams, budget=DailyBudget("salesforce", 1.0))
    second: dict[str, list[str]] = {s.name: [] for s in streams}
    for page in nxt.read_many(cursors, cycle_start=box.ctx.clock.now()):
        second[page.stream] += [r.id for r in page.records]
    reread = skipped = 0
    for spec in streams:
        if spec.kind != "records":
            continue
        everyone = {r["Id"] for r in box.ctx.sf.records(spec.object)}
        reread += len(set(first[spec.name]) & set(second[spec.name]))
        skipped += len(everyone - set(first[spec.name]) - set(second[spec.name]))
    return {"calls": calls, "limit": 200, "status": status,
            "rows_first_run": sum(map(len, first.values())),
            "rows_next_run": sum(map(len, second.values())),
            "reread": reread, "skipped": skipped}


def hubspot(leads: int, same_timestamp: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    box = start_sandbox(leads=leads, seed=11)
    try:
        _latency(box, 100)
        # the default search rate (4/s, under HubSpot's 5/s); a high ten-second limit so the
        # write figures measure batching, not the Free tier's 100 calls / 10 s
        conn = _hs(box, requests_per_10s=1000, timeout_seconds=2.0)
        cursors = _hs_backfill(box, conn, out)
        conn.calls.reset()
        for name in conn.streams:
            list(conn.read(name, cursors[name], cycle_start=box.ctx.clock.now()))
        out["incremental_nothing_changed"] = {"streams": len(conn.streams),
                                              "calls": conn.calls.total,
                                              "minimum": len(conn.streams)}
        _hs_updates(box, conn, leads, out)
    finally:
        box.stop()
    out["same_timestamp"] = _same_timestamp(same_timestamp)
    out["isolation"] = {("named" if named else "bisection"): _isolation(named)
                        for named in (True, False)}
    out["events_burst"] = _events_burst(10_000)
    return out


def _hs_backfill(box: RunningSandbox, conn: HubSpotConnector,
                 out: dict[str, Any]) -> dict[str, Cursor | None]:
    """Read every stream from scratch; calls per stream against the fewest possible."""
    cursors: dict[str, Cursor | None] = {}
    for name in conn.streams:
        started = time.monotonic()
        conn.calls.reset()
        emitted, cursor = 0, None
        for page in conn.read(name, None, cycle_start=box.ctx.clock.now()):
            emitted += len(page.records)
            cursor = page.cursor
        cursors[name] = cursor
        spec = conn.streams[name]
        ops = conn.calls.by_operation()
        entry: dict[str, Any] = {"records_emitted": emitted, "calls": conn.calls.total,
                                 "by_operation": ops}
        if spec.options.get("mode") == "search":
            objects = box.ctx.hs.store(spec.object).records.values()
            live = sum(1 for r in objects if not r.archived)
            entry["rows"] = live
            entry["search_calls"] = sum(n for op, n in ops.items()
                                        if op.startswith("search_"))
            entry["minimum_search"] = math.ceil(live / SEARCH_PAGE)
        out.setdefault("backfill_by_stream", {})[name] = entry
        if name == "contacts":
            live = sum(1 for r in box.ctx.hs.store("contacts").records.values()
                       if not r.archived)
            out["backfill_search_contacts"] = {
                "rows": live, "calls": conn.calls.total,
                "minimum": math.ceil(live / SEARCH_PAGE),
                "keyset_restarts": conn.keyset_restarts,
                "records_per_s_at_100ms": round(emitted / (time.monotonic() - started))}
    return cursors


def _hs_updates(box: RunningSandbox, conn: HubSpotConnector, leads: int,
                out: dict[str, Any]) -> None:
    """Contact updates in batches of 100 (20,000 of them on a large run), then under faults."""
    ids = sorted((str(i) for i, r in box.ctx.hs.store("contacts").records.items()
                  if not r.archived), key=int)
    ids = (ids * math.ceil(20_000 / len(ids)))[:20_000] if leads >= 20_000 else ids
    chunks = [ids[i:i + BATCH_MAX] for i in range(0, len(ids), BATCH_MAX)]
    items = [WriteItem(fields={HS_OUTPUTS["grade"]: "AB"[n % 2]}, id=i)
             for n, i in enumerate(ids)]
    conn.calls.reset()
    started = time.monotonic()
    results = conn.write("contacts", "update", items)
    out["update"] = {"records": len(items), "calls": conn.calls.total,
                     "minimum": len(chunks), "ok": sum(r.ok for r in results),
                     "records_per_s_at_100ms": round(len(items)
                                                     / (time.monotonic() - started))}
    unique = [WriteItem(fields={HS_OUTPUTS["grade"]: "C"}, id=i) for i in dict.fromkeys(ids)]
    out["update_under_faults"] = _writes_under_faults(box, conn, unique[:3000], "hubspot")


def _isolation(named: bool) -> dict[str, Any]:
    """100 contact updates, one with an invalid e-mail: HubSpot refuses the whole batch
    (naming the bad input, or not); the connector lands the 99 and dead-letters the one."""
    box = start_sandbox(leads=150, seed=13, faults=FaultProfile(
        hubspot_requests_per_10s=1000, hubspot_search_delay_seconds=0))
    try:
        box.ctx.hs.batch_errors_name_inputs = named
        ids = sorted(str(i) for i, r in box.ctx.hs.store("contacts").records.items()
                     if not r.archived)[:100]
        bad = ids[37]
        items = [WriteItem(fields={HS_OUTPUTS["grade"]: "B", **({"email": "x@acme-corp.cm0"}
                                                        if i == bad else {})}, id=i)
                 for i in ids]
        conn = _hs(box)
        results = conn.write("contacts", "update", items)
        return {"records": len(items), "calls": conn.calls.total,
                "bound": 1 + 2 * math.ceil(math.log2(len(items))),
                "written": sum(r.ok for r in results),
                "dead_letters": [r.code for r in results if not r.ok]}
    finally:
        box.stop()


def _events_burst(n: int) -> dict[str, Any]:
    """n events in one second (many per millisecond, stored out of order): the events API
    pages them back, and the connector's events pull records each once."""
    box = start_sandbox(leads=20, seed=17, faults=FaultProfile(hubspot_requests_per_10s=1000))
    try:
        hs, rng = box.ctx.hs, random.Random(17)
        second = (box.ctx.clock.now() - timedelta(minutes=1)).replace(microsecond=0)
        contacts = sorted(hs.store("contacts").records)[:5]
        with box.ctx.lock:
            burst = {hs.add_event("e_visited_page", rng.choice(contacts), second + timedelta(
                microseconds=rng.randrange(1_000_000)), {"hs_url": "https://x.io/"}).id
                for _ in range(n)}
        conn = _hs(box)
        ids = [r.id for p in conn.read("web_events", None, cycle_start=box.ctx.clock.now())
               for r in p.records]
        got = [i for i in ids if i in burst]
        return {"events": n, "recorded": len(got), "unique": len(set(got)),
                "calls": conn.calls.total}
    finally:
        box.stop()


def _same_timestamp(n: int) -> dict[str, Any]:
    box = start_sandbox(leads=20, seed=11, faults=FaultProfile(hubspot_searches_per_second=5))
    try:
        same = box.ctx.clock.now() - timedelta(minutes=5)
        with box.ctx.lock:
            for i in range(n):
                box.ctx.hs.create("contacts", {"email": f"bulk{i}@example.com"},
                                  created_at=same, system=True)
        conn = _hs(box)
        ids = [r.id for p in conn.read("contacts", None, cycle_start=box.ctx.clock.now())
               for r in p.records if isinstance(r, RemoteRecord)]
        live = sum(1 for r in box.ctx.hs.store("contacts").records.values() if not r.archived)
        return {"rows": live, "read": len(ids), "unique": len(set(ids)),
                "calls": conn.calls.total,
                "minimum": math.ceil(live / SEARCH_PAGE),
                "keyset_restarts": conn.keyset_restarts}
    finally:
        box.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    leads = 2_000 if args.quick else 20_000
    same = 1_000 if args.quick else 10_500
    started = time.monotonic()
    report = {"salesforce": salesforce(leads), "hubspot": hubspot(leads, same),
              "latency_ms_injected": 100, "leads_seeded": leads,
              "seconds": 0.0}
    report["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
