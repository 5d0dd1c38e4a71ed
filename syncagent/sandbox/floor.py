"""The fewest calls the APIs allow for one backfill, operation by operation, with the reason.

What has to be read comes from the sandbox before the backfill starts (contacts, owners, web
events, engagements that are scoring signals), never from what the agent reports reading; what
has to be written comes from the outbox rows the backfill sent (the agent's decisions). Each
minimum is the batch or page size the vendor documents (API-FACTS.md; the connectors' limits
modules define each once) applied to those rows.

Salesforce's Composite call carries up to five queries or sObject Collections and counts as
one call, so its floor packs five query pages (of different streams; one stream's pages follow
each other) or five collections of 200 into each call; the floor without Composite packing is
printed beside it.

`bench/e2e.py` prints these tables (and the wall-time bound they imply, bench/e2e_floor.py);
`syncagent demo` prints their totals beside the calls its backfill spent.
"""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from typing import Any

from connectors.hubspot import limits as hs_limits
from connectors.hubspot.streams import ACTIVITY_ENGAGEMENTS as ENGAGEMENTS
from connectors.hubspot.streams import engagement_kind
from connectors.salesforce import limits as sf_limits

SF_PAGE, SF_BATCH = sf_limits.QUERY_PAGE, sf_limits.COLLECTION_MAX
SF_COMPOSITE = sf_limits.COMPOSITE_MAX_QUERIES
HS_SEARCH, HS_EVENTS, HS_ASSOC = (hs_limits.SEARCH_PAGE, hs_limits.EVENTS_PAGE,
                                  hs_limits.ASSOCIATION_BATCH)
HS_BATCH, HS_LIST, HS_OWNERS = (hs_limits.BATCH_MAX, hs_limits.LIST_MEMBERSHIP_MAX,
                                hs_limits.OWNERS_PAGE)
HS_LIST_PAGE = hs_limits.LIST_PAGE
SF_STREAMS = ("Lead", "Contact", "Account", "User", "Task", "Event", "Campaign",
              "CampaignMember")


def _ceil(rows: int, size: int) -> int:
    return math.ceil(rows / size)


def portal_truth(ctx: Any) -> dict[str, Any]:
    """What a HubSpot backfill must read, counted in the sandbox's portal before it starts."""
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


def floors(truth: dict[str, Any], sent: dict[str, Any], pulled: dict[str, int],
           calls: dict[str, dict[str, int]]) -> dict[str, list[dict[str, Any]]]:
    """Each system's table: ``truth`` from ``portal_truth`` before the backfill, ``sent``
    from ``sent_rows`` after it, ``pulled`` its records read per stream name, ``calls`` its
    calls per system and operation."""
    return {"salesforce": salesforce_floor(pulled, sent, calls.get("salesforce", {})),
            "hubspot": hubspot_floor(truth, sent, calls.get("hubspot", {}))}
