"""SOQL aggregate queries: GROUP BY groups and aggregate functions as AggregateResult rows.

As in Salesforce (SOQL and SOSL Reference, "Aggregate Functions" and "Use Aliases with
GROUP BY": https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_agg_functions.htm,
https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_groupby_alias.htm):

- ``SELECT COUNT() FROM Lead`` answers ``totalSize`` and no records (handled in the API);
- ``SELECT Status, COUNT(Id) FROM Lead GROUP BY Status`` answers one ``AggregateResult`` row
  per group, the grouped fields under their names and each aggregate under its alias, or
  ``expr0``, ``expr1``, ... in order among the aggregates without one;
- an aggregate without GROUP BY is one row over all matching records (COUNT 0 when none);
- LIMIT and OFFSET count groups; aggregate results are not paged with queryMore.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from syncagent.sandbox.salesforce.soql import (
    Aggregate,
    Lookup,
    Query,
    getter,
    sort_records,
)
from syncagent.sandbox.salesforce.values import wire

Record = dict[str, Any]


def _compute(aggregate: Aggregate, rows: list[Record], lookup: Lookup) -> Any:
    get = getter(aggregate.path, lookup)
    values = [v for v in (get(r) for r in rows) if v is not None]
    function = aggregate.function
    if function == "count":
        return len(values)
    if function == "count_distinct":
        return len({v.lower() if isinstance(v, str) else v for v in values})
    if not values:
        return None
    if function == "sum":
        return float(sum(values))
    if function == "avg":
        return float(sum(values)) / len(values)
    chosen = min(values) if function == "min" else max(values)
    return wire(aggregate.path.target, chosen)


def _group_key(getters: list[Callable[[Record], Any]], rec: Record) -> tuple[Any, ...]:
    return tuple(v.lower() if isinstance(v, str) else v for v in (g(rec) for g in getters))


def aggregate_rows(query: Query, rows: list[Record], lookup: Lookup) -> list[dict[str, Any]]:
    """The AggregateResult rows of an aggregate query over its matching records."""
    getters = [getter(path, lookup) for path in query.group_by]
    groups: dict[tuple[Any, ...], list[Record]] = {}
    for rec in rows:
        groups.setdefault(_group_key(getters, rec), []).append(rec)
    members = list(groups.values())
    if not query.group_by:
        members = [rows]                   # one row over everything, even when empty
    elif query.order:
        firsts = [group[0] for group in members]
        by_first = {id(group[0]): group for group in members}
        sort_records(firsts, query.order, lookup)
        members = [by_first[id(first)] for first in firsts]
    end = None if query.limit is None else query.offset + query.limit
    out = []
    for group in members[query.offset:end]:
        row: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
        for path in query.fields:
            value = getter(path, lookup)(group[0]) if group else None
            name = query.aliases.get(path.text.lower(), path.target.name)
            row[name] = wire(path.target, value)
        for aggregate in query.aggregates:
            row[aggregate.name] = _compute(aggregate, group, lookup)
        out.append(row)
    return out
