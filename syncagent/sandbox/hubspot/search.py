"""CRM search: filterGroups (OR of ANDed filters), one sort, offset paging, the 10,000 cap."""

from __future__ import annotations

import fnmatch
import heapq
import re
from collections.abc import Callable, Iterable
from typing import Any

from syncagent.sandbox.hubspot.portal import HsRecord, HubSpotError
from syncagent.sandbox.hubspot.properties import PropertyDef, to_ms

MAX_LIMIT = 200
MAX_RESULTS = 10_000
MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
             "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
_TOKEN_SPLIT = re.compile(r"[^0-9a-z]+")

Predicate = Callable[[HsRecord], bool]


def _bad(message: str) -> HubSpotError:
    return HubSpotError(400, message, "VALIDATION_ERROR")


def _comparable(prop: PropertyDef | None, value: Any) -> Any:
    """The value as HubSpot compares it: numbers and dates numerically, text case-blind."""
    if value is None:
        return None
    text = str(value)
    if prop is not None and prop.type == "number":
        try:
            return float(text)
        except ValueError:
            raise _bad(f"Invalid number value '{text}' for property {prop.name}") from None
    if prop is not None and prop.type in ("datetime", "date"):
        ms = to_ms(text)
        if ms is None:
            raise _bad(f"Invalid date value '{text}' for property {prop.name}; use epoch "
                       "milliseconds")
        return ms
    return text.lower()


def _getter(prop: PropertyDef | None, name: str) -> Callable[[HsRecord], Any]:
    """A fast accessor for the comparable stored value (None when the record has none)."""
    if name == "hs_object_id":
        return lambda r: r.id
    if name in ("lastmodifieddate", "hs_lastmodifieddate"):
        return lambda r: r.updated_ms
    kind = prop.type if prop is not None else "string"

    if kind == "number":
        def number(r: HsRecord) -> Any:
            raw = r.properties.get(name)
            if not raw:
                return None
            try:
                return float(raw)
            except ValueError:
                return None
        return number
    if kind in ("datetime", "date"):
        def moment(r: HsRecord) -> Any:
            raw = r.properties.get(name)
            return to_ms(raw) if raw else None
        return moment

    def text(r: HsRecord) -> Any:
        raw = r.properties.get(name)
        return raw.lower() if raw else None
    return text


def _stored(prop: PropertyDef | None, record: HsRecord, name: str) -> Any:
    return _getter(prop, name)(record)


def _tokens_match(stored: str, wanted: str) -> bool:
    if "*" in wanted:
        return fnmatch.fnmatchcase(stored, wanted) or any(
            fnmatch.fnmatchcase(tok, wanted) for tok in _TOKEN_SPLIT.split(stored))
    return wanted in _TOKEN_SPLIT.split(stored) or stored == wanted


def compile_filter(defs: dict[str, PropertyDef], spec: dict[str, Any]) -> Predicate:
    """One filter -> predicate; unknown properties and operators are 400s, as in HubSpot."""
    name = spec.get("propertyName")
    operator = spec.get("operator", "EQ")
    if not isinstance(name, str) or not name:
        raise _bad("filter is missing propertyName")
    if operator not in OPERATORS:
        raise _bad(f"Invalid operator {operator}; use one of {sorted(OPERATORS)}")
    if name.startswith("associations."):
        return _association_filter(name.split(".", 1)[1], operator, spec)
    prop = defs.get(name)
    if prop is None:
        raise _bad(f"Property {name} does not exist")
    if operator == "HAS_PROPERTY":
        return lambda r: _stored(prop, r, name) is not None
    if operator == "NOT_HAS_PROPERTY":
        return lambda r: _stored(prop, r, name) is None
    if operator in ("IN", "NOT_IN"):
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise _bad(f"{operator} filter on {name} needs a non-empty 'values' list")
        wanted = {_comparable(prop, v) for v in values}
        if operator == "IN":
            return lambda r: _stored(prop, r, name) in wanted
        return lambda r: _stored(prop, r, name) not in wanted
    if "value" not in spec or spec["value"] is None:
        raise _bad(f"{operator} filter on {name} needs a 'value'")
    value = _comparable(prop, spec["value"])
    if operator == "BETWEEN":
        if spec.get("highValue") is None:
            raise _bad(f"BETWEEN filter on {name} needs a 'highValue'")
        high = _comparable(prop, spec["highValue"])

        def between(r: HsRecord) -> bool:
            got = _stored(prop, r, name)
            return got is not None and value <= got <= high
        return between
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(spec["value"]).lower()
        negate = operator == "NOT_CONTAINS_TOKEN"

        def tokens(r: HsRecord) -> bool:
            got = r.properties.get(name)
            found = got is not None and _tokens_match(got.lower(), token)
            return found != negate
        return tokens
    return _comparison(prop, name, operator, value)


def _comparison(prop: PropertyDef, name: str, operator: str, value: Any) -> Predicate:
    get = _getter(prop, name)
    if operator == "NEQ":
        return lambda r: get(r) != value
    if operator == "EQ":
        return lambda r: get(r) == value
    if name == "hs_object_id":   # the keyset-paging hot path: ids are never missing
        return {"LT": lambda r: r.id < value, "LTE": lambda r: r.id <= value,
                "GT": lambda r: r.id > value, "GTE": lambda r: r.id >= value}[operator]
    if name in ("lastmodifieddate", "hs_lastmodifieddate"):
        return {"LT": lambda r: r.updated_ms < value, "LTE": lambda r: r.updated_ms <= value,
                "GT": lambda r: r.updated_ms > value,
                "GTE": lambda r: r.updated_ms >= value}[operator]

    def lt(r: HsRecord) -> bool:
        got = get(r)
        return got is not None and bool(got < value)

    def lte(r: HsRecord) -> bool:
        got = get(r)
        return got is not None and bool(got <= value)

    def gt(r: HsRecord) -> bool:
        got = get(r)
        return got is not None and bool(got > value)

    def gte(r: HsRecord) -> bool:
        got = get(r)
        return got is not None and bool(got >= value)
    return {"LT": lt, "LTE": lte, "GT": gt, "GTE": gte}[operator]


def _association_filter(to_type: str, operator: str, spec: dict[str, Any]) -> Predicate:
    """`associations.contact EQ 123`: records associated with that contact."""
    plural = to_type if to_type.endswith("s") else to_type + "s"
    if operator == "IN":
        ids = {int(v) for v in spec.get("values") or [] if str(v).isdigit()}
    elif operator == "EQ" and str(spec.get("value", "")).isdigit():
        ids = {int(spec["value"])}
    else:
        raise _bad(f"associations.{to_type} supports EQ or IN with record ids")
    return lambda r: bool(r.associations.get(plural, set()) & ids)


def compile_groups(defs: dict[str, PropertyDef], groups: list[dict[str, Any]]) -> Predicate:
    if len(groups) > MAX_GROUPS:
        raise _bad(f"Too many filter groups ({len(groups)}); at most {MAX_GROUPS} are allowed")
    total = sum(len(g.get("filters") or []) for g in groups)
    if total > MAX_FILTERS:
        raise _bad(f"Too many filters ({total}); at most {MAX_FILTERS} are allowed")
    compiled: list[list[Predicate]] = []
    for group in groups:
        filters = group.get("filters") or []
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise _bad(f"Too many filters in a group ({len(filters)}); at most "
                       f"{MAX_FILTERS_PER_GROUP} are allowed")
        compiled.append([compile_filter(defs, f) for f in filters])
    if not compiled:
        return lambda r: True
    ands = [_all_of(group) for group in compiled]
    if len(ands) == 1:
        return ands[0]
    return lambda r: any(p(r) for p in ands)


def _all_of(predicates: list[Predicate]) -> Predicate:
    if not predicates:
        return lambda r: True
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda r: first(r) and second(r)
    return lambda r: all(p(r) for p in predicates)


def _query_predicate(query: str | None) -> Predicate | None:
    """Free-text `query`: a token prefix match over the default searchable properties."""
    if not query:
        return None
    needle = query.lower()
    fields = ("email", "firstname", "lastname", "company", "phone", "hs_email_subject",
              "hs_call_title", "hs_meeting_title", "hs_task_subject", "hs_note_body")

    def match(r: HsRecord) -> bool:
        for name in fields:
            value = r.properties.get(name)
            if value and (needle in value.lower()):
                return True
        return False
    return match


def run_search(records: Iterable[HsRecord], defs: dict[str, PropertyDef],
               body: dict[str, Any]) -> tuple[int, list[HsRecord], int | None]:
    """(total, page of records, next offset or None) for a search request body."""
    limit, after = paging(body)
    predicate = compile_groups(defs, body.get("filterGroups") or [])
    text = _query_predicate(body.get("query"))
    matched = [r for r in records if not r.archived and predicate(r) and (text is None or text(r))]
    # only the first after+limit in order are needed: a heap keeps a page O(N log k), where a
    # full sort of every match made each page of a 100k-contact backfill cost the whole org
    page = _first(matched, defs, body.get("sorts") or [], after + limit)[after:]
    next_after = after + limit if after + limit < len(matched) else None
    return len(matched), page, next_after


def paging(body: dict[str, Any]) -> tuple[int, int]:
    """(limit, after) of a search body, refused as HubSpot does (the 10,000 cap included)."""
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or limit < 0 or limit > MAX_LIMIT:
        raise _bad(f"limit must be between 0 and {MAX_LIMIT}, got {limit}")
    after_raw = body.get("after") or "0"
    if not str(after_raw).isdigit():
        raise _bad(f"after must be an integer offset as a string, got {after_raw!r}")
    after = int(after_raw)
    if after + limit > MAX_RESULTS:
        raise HubSpotError(400, "There was a problem with the request.", "VALIDATION_ERROR")
    return limit, after


def sort_spec(spec: Any) -> tuple[str, bool]:
    """(property name, descending) of one entry of `sorts`."""
    if isinstance(spec, str):   # "-createdate" / "createdate" shorthand
        return spec.lstrip("-"), spec.startswith("-")
    name = spec.get("propertyName", "")
    return name, str(spec.get("direction", "ASCENDING")).upper() == "DESCENDING"


def _first(records: list[HsRecord], defs: dict[str, PropertyDef], sorts: list[Any],
           count: int) -> list[HsRecord]:
    """The first `count` records in the search's order (one sort at most; records without a
    value come last either way; ties break by id ascending)."""
    if len(sorts) > 1:
        raise _bad("Only one sort is supported")
    if not sorts:
        return heapq.nsmallest(count, records, key=lambda r: r.id)
    name, descending = sort_spec(sorts[0])
    prop = defs.get(name)
    if prop is None:
        raise _bad(f"Property {name} does not exist")
    get = _getter(prop, name)
    keyed = [(get(r), r) for r in records]
    present = [pair for pair in keyed if pair[0] is not None]
    if descending:
        top = heapq.nlargest(count, present, key=lambda pair: (pair[0], -pair[1].id))
    else:
        top = heapq.nsmallest(count, present, key=lambda pair: (pair[0], pair[1].id))
    out = [r for _, r in top]
    if len(out) < count:
        missing = [r for key, r in keyed if key is None]
        out += heapq.nsmallest(count - len(out), missing, key=lambda r: r.id)
    return out
