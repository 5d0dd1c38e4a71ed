"""Running a parsed SOQL query over the org's rows.

The hot path of every incremental read is ``WHERE SystemModstamp > x ORDER BY SystemModstamp,
Id LIMIT n`` over 100,000 rows, so the planner narrows candidates through the store's
(SystemModstamp, Id) order or an Id filter before the full predicate runs, and stops early
when the rows are already in the query's order.
"""

from __future__ import annotations

import bisect
from datetime import datetime
from itertools import islice

from syncagent.sandbox.salesforce.soql import Cond, Query, compile_condition, sort_records
from syncagent.sandbox.salesforce.store import Record, RecordStore


def run_query(store: RecordStore, query: Query, now: datetime, *,
              include_deleted: bool) -> list[Record]:
    """Matching records, in the query's order, after OFFSET and LIMIT."""
    name = query.obj.name
    candidates, presorted = _candidates(store, query)
    exact = presorted and _exact_modstamp_range(query.where)
    pred = compile_condition(query.where, store.lookup, now) if query.where and not exact \
        else None
    # Deleted rows are few and all listed in store.deleted_at: skip the per-row check when the
    # recycle bin is empty (a page over 100,000 rows is in the hot path).
    if not include_deleted and query.obj.deletable and store.deleted_at[name]:
        live = pred
        pred = (lambda r: not r["IsDeleted"]) if live is None else \
            (lambda r: not r["IsDeleted"] and live(r))
    in_order = presorted and _is_modstamp_order(query)
    if in_order and query.limit is not None:
        # Already in (SystemModstamp, Id) order: stop at OFFSET + LIMIT matches.
        wanted = query.offset + query.limit
        rows = list(islice((r for r in candidates if pred is None or pred(r)), wanted))
        return rows[query.offset:]
    rows = list(candidates) if pred is None else [r for r in candidates if pred(r)]
    if query.order and not in_order:
        sort_records(rows, query.order, store.lookup)
    if query.offset or query.limit is not None:
        end = None if query.limit is None else query.offset + query.limit
        rows = rows[query.offset:end]
    return rows


def _candidates(store: RecordStore, query: Query) -> tuple[list[Record], bool]:
    """A narrowed candidate list (via the modstamp index or ids), and whether it is sorted
    by (SystemModstamp, Id). Candidates are a superset: the full predicate still runs."""
    name = query.obj.name
    id_values = _id_filter(_top_level(query.where))
    if id_values is not None:
        table = store.tables[name]
        return [table[i] for i in sorted(id_values) if i in table], False
    bounds = _modstamp_bounds(query.where) if query.where is not None else None
    if bounds is None and not _is_modstamp_order(query):
        return list(store.tables[name].values()), False
    ordered = store.ordered(name)
    lo, hi = 0, len(ordered)
    if bounds is not None:
        low, high = bounds
        if low is not None:
            lo = bisect.bisect_left(ordered, low, key=_modstamp_key)
        if high is not None:
            hi = bisect.bisect_right(ordered, high, key=_modstamp_key)
    if query.where is not None and _exact_modstamp_range(query.where):
        # Only strict bounds remain: trim rows equal to them (cheap, both ends).
        for cond in _top_level(query.where):
            value = cond.literals[0].value
            if cond.operator == ">":
                lo = max(lo, bisect.bisect_right(ordered, value, key=_modstamp_key))
            elif cond.operator == "<":
                hi = min(hi, bisect.bisect_left(ordered, value, key=_modstamp_key))
    return ordered[lo:max(lo, hi)], True


def _modstamp_key(rec: Record) -> datetime:
    stamp: datetime = rec["SystemModstamp"]
    return stamp


def _top_level(where: Cond | None) -> list[Cond]:
    if where is None:
        return []
    return where.children if where.op == "and" else [where]


def _is_direct(cond: Cond, name: str) -> bool:
    return cond.path is not None and not cond.path.hops and cond.path.target.name == name


def _id_filter(conds: list[Cond]) -> set[str] | None:
    for cond in conds:
        if _is_direct(cond, "Id") and (cond.op == "in" or (cond.op == "cmp"
                                                           and cond.operator == "=")):
            return {lit.value for lit in cond.literals if lit.value is not None}
    return None


Bounds = tuple[datetime | None, datetime | None]     # inclusive SystemModstamp range


def _modstamp_bounds(cond: Cond) -> Bounds | None:
    """The SystemModstamp range a condition implies (a superset), or None if unbounded."""
    if cond.op == "cmp":
        if not (_is_direct(cond, "SystemModstamp") and cond.literals[0].kind == "datetime"):
            return None
        value = cond.literals[0].value
        return {">": (value, None), ">=": (value, None), "<": (None, value),
                "<=": (None, value), "=": (value, value)}.get(cond.operator)
    children = [_modstamp_bounds(c) for c in cond.children] if cond.op in ("and", "or") \
        else []
    if cond.op == "and":
        known = [b for b in children if b is not None]
        if not known:
            return None
        lows = [b[0] for b in known if b[0] is not None]
        highs = [b[1] for b in known if b[1] is not None]
        return (max(lows) if lows else None, min(highs) if highs else None)
    if cond.op == "or":
        if not children or any(b is None for b in children):
            return None
        spans = [b for b in children if b is not None]
        low = None if any(b[0] is None for b in spans) else min(b[0] for b in spans
                                                                 if b[0] is not None)
        high = None if any(b[1] is None for b in spans) else max(b[1] for b in spans
                                                                  if b[1] is not None)
        return None if low is None and high is None else (low, high)
    return None


def _exact_modstamp_range(where: Cond | None) -> bool:
    """Whether the condition is only SystemModstamp comparisons joined by AND, so the
    index slice is the exact answer and no predicate has to run per row."""
    conds = _top_level(where)
    return bool(conds) and all(
        c.op == "cmp" and _is_direct(c, "SystemModstamp") and c.literals[0].kind == "datetime"
        and c.operator in ("<", "<=", ">", ">=", "=") for c in conds)


def _is_modstamp_order(query: Query) -> bool:
    names = [(o.path.text, o.descending) for o in query.order]
    return bool(names) and names[0] == ("SystemModstamp", False) and (
        len(names) == 1 or (len(names) == 2 and names[1] == ("Id", False)))
