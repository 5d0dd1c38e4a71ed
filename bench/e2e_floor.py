"""The least wall time a backfill's minimum calls allow (``lower_bound``).

The minimum calls themselves, operation by operation with the reason, are counted in
syncagent/sandbox/floor.py (shared with `syncagent demo`); they are re-exported here for the
bench (bench/e2e.py puts the project root on the path first).
"""

from __future__ import annotations

from typing import Any

from syncagent.sandbox.floor import (
    ENGAGEMENTS,
    HS_BATCH,
    SF_BATCH,
    hubspot_floor,
    portal_truth,
    salesforce_floor,
    sent_rows,
    totals,
)

__all__ = ["HS_BATCH", "SF_BATCH", "hubspot_floor", "lower_bound", "portal_truth",
           "salesforce_floor", "sent_rows", "totals"]


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
