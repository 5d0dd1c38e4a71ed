"""CRM search answered from kept matches, for the queries a sync sweep pages through.

``run_search`` is the definition: filter every record, sort, slice. Paged by offset, it costs
the whole store per page, O(N²) per stream. A query whose filters and sort read only a
record's id and last-modified date (the sweep's own: a date range, an id keyset, id order)
depends on nothing but what the portal's methods change and note in the store's journal, so
its matches are kept sorted between pages (journal.Matches) and each page costs what changed
since the last one, plus a slice. Any other query (property filters, free text, several
sorts, malformed bodies) goes to ``run_search`` unchanged, and so do its errors.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from syncagent.sandbox.hubspot.journal import Matches
from syncagent.sandbox.hubspot.portal import HsRecord, ObjectStore
from syncagent.sandbox.hubspot.properties import PropertyDef
from syncagent.sandbox.hubspot.search import (
    OPERATORS,
    compile_groups,
    paging,
    run_search,
    sort_spec,
)

#: the properties the search reads from the record itself (search._getter), not from its
#: property values, which seeding and simulation also set directly
_STAMPED = frozenset({"hs_object_id", "lastmodifieddate", "hs_lastmodifieddate"})
#: the token operators read the property value, not the record's id or date
_STAMPED_OPERATORS = OPERATORS - {"CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}

Page = tuple[int, list[HsRecord], int | None]


@dataclass(frozen=True)
class _Order:
    """A sort as a key whose ascending order is the search's, and the id back from a key."""

    key: Callable[[HsRecord], Any]
    record_id: Callable[[Any], int]


# Ties break by id ascending, as search._first; an id or a date is never missing.
_ORDERS = {
    ("hs_object_id", False): _Order(lambda r: r.id, lambda k: int(k)),
    ("hs_object_id", True): _Order(lambda r: -r.id, lambda k: -int(k)),
    ("modified", False): _Order(lambda r: (r.updated_ms, r.id), lambda k: int(k[1])),
    ("modified", True): _Order(lambda r: (-r.updated_ms, r.id), lambda k: int(k[1])),
}


def search_store(store: ObjectStore, defs: dict[str, PropertyDef], body: dict[str, Any],
                 horizon: float | None) -> Page:
    """(total, page, next offset or None) of a search over the store's records, leaving
    out those modified after horizon (epoch ms; None: none left out)."""
    order = _kept_order(defs, body)
    hidden = None if horizon is None else store.journal.touched_after(horizon)
    if order is None or (horizon is not None and hidden is None):
        records = store.records.values()
        if horizon is not None:
            return run_search([r for r in records if r.updated_ms <= horizon], defs, body)
        return run_search(records, defs, body)
    limit, after = paging(body)       # the same checks, in the same order, as run_search
    groups = body.get("filterGroups") or []
    predicate = compile_groups(defs, groups)
    query = json.dumps([groups, body.get("sorts") or []], sort_keys=True, default=str)
    matches = store.matches.get(query, lambda: Matches(predicate, order.key))
    matches.refresh(store.records, store.journal)
    return _slice(store, matches, order, sorted(
        matches.keys[rid] for rid in hidden or () if rid in matches.keys), after, limit)


def _slice(store: ObjectStore, matches: Matches, order: _Order, hidden: list[Any],
           after: int, limit: int) -> Page:
    """The page at offset `after` of the matches, the hidden keys (sorted) left out."""
    keys = matches.order
    skipped = [bisect_left(keys, key) for key in hidden]
    total = len(keys) - len(skipped)
    at = after
    for position in skipped:          # each hidden key at or before `at` pushes it on one
        if position > at:
            break
        at += 1
    left_out = set(skipped)
    page: list[HsRecord] = []
    while at < len(keys) and len(page) < limit:
        if at not in left_out:
            page.append(store.records[order.record_id(keys[at])])
        at += 1
    return total, page, after + limit if after + limit < total else None


def _kept_order(defs: dict[str, PropertyDef], body: dict[str, Any]) -> _Order | None:
    """The order of the query's kept matches, or None when the query reads anything besides
    ids and dates (or is malformed: run_search then answers, or refuses, as it always has)."""
    if body.get("query"):
        return None
    sorts = body.get("sorts") or []
    if not isinstance(sorts, list) or len(sorts) > 1:
        return None
    if sorts and not isinstance(sorts[0], str | dict):
        return None
    name, descending = sort_spec(sorts[0]) if sorts else ("hs_object_id", False)
    if name not in _STAMPED or name not in defs or not _stamped_filters(defs, body):
        return None
    return _ORDERS[("hs_object_id" if name == "hs_object_id" else "modified", descending)]


def _stamped_filters(defs: dict[str, PropertyDef], body: dict[str, Any]) -> bool:
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list):
        return False
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("filters") or [], list):
            return False
        for spec in group.get("filters") or []:
            if not isinstance(spec, dict) or spec.get("propertyName") not in _STAMPED \
                    or spec.get("operator", "EQ") not in _STAMPED_OPERATORS:
                return False
    return True
