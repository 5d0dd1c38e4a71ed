"""The fewest calls the APIs allow for one backfill, operation by operation, with the reason.

What has to be read comes from the sandbox before the backfill starts (contacts, owners, web
events, engagements that are scoring signals), never from what the agent reports reading; what
has to be written comes from the outbox rows the backfill sent (the agent's decisions). Each
minimum is the batch or page size the vendor documents (API-FACTS.md) applied to those rows.

Salesforce's Composite call carries up to five queries or sObject Collections and counts as
one call, so its floor packs five query pages (of different streams; one stream's pages follow
each other) or five collections of 200 into each call; the floor without Composite packing is
printed beside it.

``lower_bound`` turns the minimums into the least wall time the limits allow (its docstring
gives the formula).
"""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from typing import Any

SF_PAGE, SF_BATCH, SF_COMPOSITE = 2000, 200, 5
HS_SEARCH, HS_EVENTS, HS_ASSOC, HS_BATCH, HS_LIST, HS_OWNERS, HS_LIST_PAGE = (
    200, 1000, 1000, 100, 1000, 500, 100)
ENGAGEMENTS = ("emails", "calls", "meetings", "tasks")
SF_STREAMS = ("Lead", "Contact", "Account", "User", "Task", "Event", "Campaign",
              "CampaignMember")


def _ceil(rows: int, size: int) -> int:
    return math.ceil(rows / size)


def portal_truth(ctx: Any) -> dict[str, Any]:
    """What a HubSpot backfill must read, counted in the sandbox's portal before it starts."""
    from connectors.hubspot.streams import engagement_kind
    from syncagent.sandbox.hubspot.events import MARKETING_EMAIL_EVENTS

    with ctx.lock:
        hs = ctx.hs
        contacts = list(hs.store("contacts").records.values())
        return {"contacts": sum(not r.archived for r in contacts),
                "archived": sum(r.archived for r in contacts),
                "owners": len(hs.owners),
                # the events API serves web events; marketing e-mail events are not in it
                "events": sum(e.event_type not in MARKETING_EMAIL_EVENTS for e in hs.events),
                "signals": {kind: sum(1 for r in hs.store(kind).records.values()
                                      if not r.archived and engagement_kind(kind, r.properties))
                            for kind in ENGAGEMENTS}}


def sent_rows(state_path: str) -> dict[str, Any]:
    """Outbox rows the backfill sent (done or dead), per (system, object, operation), and the
    HubSpot updates that had to clear the lifecycle stage first."""
    rows: Counter[tuple[str, str, str]] = Counter()
    clears = 0
    with sqlite3.connect(state_path) as db:
        for system, obj, operation, fields in db.execute(
                "SELECT system, object, operation, fields FROM outbox "
                "WHERE status IN ('done', 'dead')"):
            rows[(system, obj, operation)] += 1
            if system == "hubspot" and operation == "update" and "__clear_first" in fields:
                clears += 1
    return {"rows": rows, "clears": clears}


def _op(calls: dict[str, int], names: tuple[str, ...], minimum: int, reason: str
        ) -> dict[str, Any]:
    used = sum(calls.get(n, 0) for n in names)
    return {"operation": "+".join(names), "calls": used, "minimum": minimum, "reason": reason,
            "ratio": round(used / minimum, 3) if minimum else (None if used == 0 else "inf")}


def hubspot_floor(truth: dict[str, Any], sent: dict[str, Any], calls: dict[str, int]
                  ) -> list[dict[str, Any]]:
    rows: Counter[tuple[str, str, str]] = sent["rows"]

    def written(obj: str, operation: str) -> int:
        return rows.get(("hubspot", obj, operation), 0)

    signals = truth["signals"]
    lists = {obj: n for (system, obj, _op_name), n in rows.items()
             if system == "hubspot" and obj.startswith("list:")}
    upserts = written("contacts", "upsert")
    out = [
        _op(calls, ("properties",), 1, "the portal's contact properties, once per process "
                                       "(preflight)"),
        _op(calls, ("owners",), max(1, _ceil(truth["owners"], HS_OWNERS)),
            f"{truth['owners']} owners, {HS_OWNERS} a page"),
        _op(calls, ("search_contacts",), max(1, _ceil(truth["contacts"], HS_SEARCH)),
            f"{truth['contacts']} contacts: ceil(N/{HS_SEARCH}) search pages"),
        _op(calls, ("list_contacts",), max(1, _ceil(truth["archived"], HS_LIST_PAGE)),
            f"{truth['archived']} archived contacts (deletions): {HS_LIST_PAGE} a page, "
            "one page at least"),
        _op(calls, ("events",), max(1, _ceil(truth["events"], HS_EVENTS)),
            f"{truth['events']} web events: ceil(N/{HS_EVENTS}) pages"),
    ]
    for kind in ENGAGEMENTS:
        out.append(_op(calls, (f"search_{kind}",), max(1, _ceil(signals[kind], HS_SEARCH)),
                       f"{signals[kind]} {kind} that are scoring signals (the others feed "
                       f"nothing): ceil(N/{HS_SEARCH}) search pages, one at least"))
    out += [
        _op(calls, ("associations",), sum(_ceil(n, HS_ASSOC) for n in signals.values()),
            f"the contacts of each signal engagement: v4 batch read, ceil(N/{HS_ASSOC}) per "
            "engagement type; none for task creates whose outcome was never in doubt"),
        _op(calls, ("batch_upsert_contacts",), _ceil(upserts, HS_BATCH),
            f"{upserts} contacts upserted by e-mail: ceil(N/{HS_BATCH})"),
        _op(calls, ("batch_update_contacts",),
            _ceil(written("contacts", "update"), HS_BATCH) + _ceil(sent["clears"], HS_BATCH),
            f"{written('contacts', 'update')} contact updates: ceil(N/{HS_BATCH}), plus "
            f"ceil({sent['clears']}/{HS_BATCH}) to clear the lifecycle stage of those moving "
            "back (HubSpot ignores an earlier stage otherwise)"),
        _op(calls, ("batch_read_contacts",), _ceil(upserts, HS_BATCH),
            f"the {upserts} contacts upserted, read back once for what HubSpot filled in: "
            f"ceil(N/{HS_BATCH})"),
        _op(calls, ("batch_create_tasks",), _ceil(written("tasks", "create"), HS_BATCH),
            f"{written('tasks', 'create')} tasks created: ceil(N/{HS_BATCH})"),
        _op(calls, ("batch_read_tasks",), 0,
            "task look-ups: none when no create's outcome was in doubt"),
        _op(calls, ("list_lookup",), len(lists),
            f"{len(lists)} nurture lists, each id looked up by name once"),
        _op(calls, ("list_membership",), sum(_ceil(n, HS_LIST) for n in lists.values()),
            f"members changed per list ({sum(lists.values())} in all): ceil(N/{HS_LIST}) "
            "per list"),
    ]
    return _with_unexpected(out, calls)


def salesforce_floor(pulled: dict[str, int], sent: dict[str, Any], calls: dict[str, int]
                     ) -> list[dict[str, Any]]:
    rows: Counter[tuple[str, str, str]] = sent["rows"]
    pages = {s: _ceil(pulled.get(s, 0), SF_PAGE) for s in SF_STREAMS}
    total_pages = sum(pages.values())
    packed_reads = max(_ceil(total_pages, SF_COMPOSITE), max(pages.values(), default=0))
    collections = sum(_ceil(n, SF_BATCH) for (system, _o, _p), n in rows.items()
                      if system == "salesforce")
    written = sum(n for (system, _o, _p), n in rows.items() if system == "salesforce")
    reads = _op(calls, ("composite", "query", "query_more"), packed_reads,
                f"{total_pages} query pages of {SF_PAGE} rows (ceil(N/{SF_PAGE}) per stream), "
                f"{SF_COMPOSITE} a Composite call, one stream's pages in turn: "
                f"max(ceil(pages/{SF_COMPOSITE}), longest stream)")
    reads["minimum_without_composite"] = total_pages
    writes = _op(calls, ("composite_write", "collections_patch", "collections_post"),
                 _ceil(collections, SF_COMPOSITE),
                 f"{written} records in {collections} sObject Collections of {SF_BATCH} "
                 f"(per object and operation), {SF_COMPOSITE} a Composite call")
    writes["minimum_without_composite"] = collections
    out = [_op(calls, ("login",), 1, "one session per process"), reads, writes]
    return _with_unexpected(out, calls)


def _with_unexpected(out: list[dict[str, Any]], calls: dict[str, int]) -> list[dict[str, Any]]:
    """Any operation the table has no minimum for is listed with a minimum of 0."""
    named = {name for op in out for name in op["operation"].split("+")}
    for name in sorted(calls):
        if name not in named:
            out.append(_op(calls, (name,), 0, "not needed by a backfill"))
    return [op for op in out if op["calls"] or op["minimum"]]


def totals(ops: list[dict[str, Any]], *, without_composite: bool = False) -> dict[str, Any]:
    used = sum(op["calls"] for op in ops)
    least = sum(op.get("minimum_without_composite", op["minimum"]) if without_composite
                else op["minimum"] for op in ops)
    return {"calls": used, "minimum": least, "ratio": round(used / max(1, least), 3)}


# Operations a backfill can make before every read is done: reads, and look-ups that need no
# decision (a nurture list's id by its name). Everything else writes, or reads back what was
# written, so it needs the decisions, and those need every read (any page of either system
# may hold a record of any person).
HS_SEARCH_OPS = frozenset({"search_contacts", *(f"search_{kind}" for kind in ENGAGEMENTS)})
HS_READ_OPS = frozenset({"properties", "owners", "list_contacts", "events", "associations",
                         "list_lookup"}) | HS_SEARCH_OPS
SF_READ_OPS = frozenset({"login", "composite+query+query_more"})


def lower_bound(ops: dict[str, list[dict[str, Any]]], latency_s: float, per_10s: int,
                searches_per_s: int) -> tuple[float, dict[str, Any]]:
    """The least wall time the minimum calls allow, and its parts (seconds).

    bound = max(SF reads, HS reads) + max(SF writes, HS writes), where
      SF x      = the minimum Salesforce calls of x, one after another, x the latency;
      HS reads  = max(minimum non-search reads / (per_10s / 10 s),
                      minimum searches / searches_per_s)
      HS writes = minimum HubSpot writes / (per_10s / 10 s).
    Reads come before writes (a write needs a decision, a decision every read); in a phase,
    the two systems may run side by side. HubSpot's searches have a per-second limit of their
    own and do not count against the ten-second one (the sandbox, like HubSpot, keeps them
    apart: API-FACTS "Search has its own limit"), so they are a lane of their own. The ten-
    second limit is taken at its average rate: a phase that starts with an idle window could
    send one window's calls at once, at most one window (10 s) sooner.
    """
    def least(system: str, names: frozenset[str], inside: bool) -> int:
        return sum(op["minimum"] for op in ops[system] if (op["operation"] in names) == inside)

    hs_rate = per_10s / 10
    searches = least("hubspot", HS_SEARCH_OPS, True)
    parts = {
        "read": {"salesforce": least("salesforce", SF_READ_OPS, True) * latency_s,
                 "hubspot_calls": least("hubspot", HS_READ_OPS - HS_SEARCH_OPS, True) / hs_rate,
                 "hubspot_searches": searches / searches_per_s},
        "write": {"salesforce": least("salesforce", SF_READ_OPS, False) * latency_s,
                  "hubspot": least("hubspot", HS_READ_OPS, False) / hs_rate},
    }
    total = max(parts["read"].values()) + max(parts["write"].values())
    return total, {phase: {k: round(v, 1) for k, v in p.items()} for phase, p in parts.items()}
