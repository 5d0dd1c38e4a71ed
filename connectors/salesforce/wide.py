"""Field lists too wide for one URL: split into queries that each fit, merged by Id.

A query travels in a URL: the ``q`` of a GET, or the ``url`` of a Composite subrequest. A GET's
request line and headers must stay under 16,384 bytes (API-FACTS); whether a subrequest url
has a limit is undocumented, so the harsher case is modelled and the sandbox refuses an
over-long one as it refuses an over-long GET. A wide field list (an admin mapping hundreds of
fields) is therefore split: the first group goes in the query that pages and orders the rows
(it keeps the stream's own fields: Id, SystemModstamp and what conversion reads), and each
further group is read by Id for the rows that query brought, in queries sized to fit, then
merged into those rows by Id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import quote

from connectors.salesforce import streams
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.limits import LOOKUP_CHUNK, MAX_GET_URL_BYTES

#: the length an id takes in a by-id query's IN list (18 characters, quoted, comma, encoded)
_ID_BYTES = len(quote("'000000000000000AAA', ", safe=""))


def fits(client: SalesforceClient, soql: str) -> bool:
    return client.get_url_bytes(soql) <= MAX_GET_URL_BYTES


def field_groups(client: SalesforceClient, fields: Sequence[str],
                 build: Callable[[Sequence[str]], str], *, reserve: int = 0
                 ) -> list[tuple[str, ...]]:
    """``fields`` in order, cut into groups whose query ``build(group)`` fits a URL with
    ``reserve`` bytes to spare (a group after the first starts with Id). One group when the
    whole list fits, as almost every stream does."""
    budget = MAX_GET_URL_BYTES - reserve
    if client.get_url_bytes(build(fields)) <= budget:
        return [tuple(fields)]
    groups: list[list[str]] = [[]]
    size = client.get_url_bytes(build(["Id"]))
    for name in fields:
        cost = len(quote(", " + name, safe=""))
        if groups[-1] and size + cost > budget:
            groups.append(["Id"] if name != "Id" else [])
            size = client.get_url_bytes(build(["Id"]))
        if name not in groups[-1]:
            groups[-1].append(name)
            size += cost
    return [tuple(group) for group in groups if group]


def by_id_soqls(client: SalesforceClient, obj: str, fields: Sequence[str],
                ids: Sequence[str]) -> list[str]:
    """By-id queries of ``fields`` for ``ids``: LOOKUP_CHUNK ids a query, the fields split
    so each query fits a URL."""
    def build(group: Sequence[str], chunk: Sequence[str] = ()) -> str:
        return streams.fields_by_id_soql(obj, group, chunk)

    groups = field_groups(client, fields, build, reserve=_ID_BYTES * LOOKUP_CHUNK)
    return [build(group, ids[start:start + LOOKUP_CHUNK])
            for start in range(0, len(ids), LOOKUP_CHUNK) for group in groups]


def merged(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Rows of several queries of the same records, one row per Id (first-seen order)."""
    by_id: dict[str, dict[str, Any]] = {}
    for row in rows:
        held = by_id.setdefault(str(row["Id"]), {})
        held.update(row)
    yield from by_id.values()


def completed(rows: list[dict[str, Any]], more: Iterable[dict[str, Any]]
              ) -> list[dict[str, Any]]:
    """``rows`` (in their order) with the fields ``more`` read for the same Ids. A row the
    by-id read did not return (deleted since: queryAll shows it, a query does not) stays as
    its first query had it."""
    extra: dict[str, dict[str, Any]] = {}
    for row in more:
        extra.setdefault(str(row["Id"]), {}).update(
            {k: v for k, v in row.items() if k != "attributes"})
    return [{**row, **extra.get(str(row.get("Id")), {})} for row in rows]


def value_chunks(client: SalesforceClient, build: Callable[[Sequence[Any]], str],
                 values: Sequence[Any]) -> list[str]:
    """Look-up queries ``build(chunk)`` for ``values``: at most LOOKUP_CHUNK values each,
    fewer when long values would make the URL too long."""
    soqls: list[str] = []
    chunk: list[Any] = []
    empty = size = client.get_url_bytes(build([]))
    separator = len(quote(", ", safe=""))
    for value in values:
        cost = client.get_url_bytes(build([value])) - empty + separator
        if chunk and (len(chunk) >= LOOKUP_CHUNK or size + cost > MAX_GET_URL_BYTES):
            soqls.append(build(chunk))
            chunk, size = [], empty
        chunk.append(value)
        size += cost
    if chunk:
        soqls.append(build(chunk))
    return soqls
