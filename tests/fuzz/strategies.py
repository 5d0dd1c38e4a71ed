"""Hypothesis strategies for hostile input: JSON-shaped values with the worst scalars (NaN,
huge integers, NUL, lone surrogates, long texts), person documents mutated from the shipped
example, remote records of both systems, config files and mapping files."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PERSON = json.loads((ROOT / "mappings" / "examples" / "person.json").read_text())

nasty_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "😀", "NaN", "Infinity",
                     "-1", "9" * 400, "1e999", "51-200", "$1.5M", "2026-02-30", "null",
                     "<script>", "' OR 1=1 --", "%s%n", "../../etc/passwd", "\u202e"]),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "9", "\x00", "é"]),
              st.integers(1_000, 200_000)),
)
nasty_numbers = st.one_of(
    st.integers(), st.integers(-(10**400), 10**400), st.floats(allow_nan=True,
                                                              allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 10**19, -(2**63), 2**64, 1e308, -0.0]),
)
nasty_scalars = st.one_of(st.none(), st.booleans(), nasty_numbers, nasty_text)
json_values = st.recursive(
    nasty_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(nasty_text, inner, max_size=4)),
    max_leaves=12)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out += _paths(value, (*prefix, index))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@st.composite
def mutated(draw: st.DrawFn, base: Any, values: st.SearchStrategy[Any] = json_values,
            max_mutations: int = 4) -> Any:
    """``base`` with a few nodes replaced by hostile values, deleted, or given extra keys."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, max_mutations))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "delete" and path:
            doc = _set(doc, path, None, delete=True)
        elif action == "add" and isinstance(_get(doc, path), dict):
            _get(doc, path)[draw(nasty_text)] = draw(values)
        else:
            doc = _set(doc, path, draw(values), delete=False)
    return doc


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


ROUTING_STATES = st.one_of(json_values, st.fixed_dictionaries(
    {"day": nasty_scalars, "assigned": json_values, "weights": json_values}))
person_documents = st.one_of(
    mutated(EXAMPLE_PERSON),
    mutated(EXAMPLE_PERSON).map(lambda d: {**d, "routing_state": "x"} if isinstance(d, dict)
                                else d),
    st.builds(lambda doc, routing: {**doc, "routing_state": routing},
              st.just(EXAMPLE_PERSON), ROUTING_STATES),
)

SF_LEAD_FIELDS = ["Email", "FirstName", "LastName", "Title", "Company", "NumberOfEmployees",
                  "AnnualRevenue", "Industry", "Country", "State", "City", "Website", "Status",
                  "Phone", "OwnerId", "Nurture_Track__c", "Disqualified_Reason__c",
                  "IsConverted", "LeadSource", "HasOptedOutOfEmail"]
HS_CONTACT_FIELDS = ["email", "firstname", "lastname", "jobtitle", "company",
                     "numberofemployees", "annualrevenue", "industry", "country", "state",
                     "city", "website", "phone", "hs_analytics_num_page_views",
                     "num_conversion_events", "hs_email_last_click_date", "lifecyclestage",
                     "hs_analytics_source", "nurture_track"]
remote_records = st.one_of(
    st.tuples(st.just("salesforce"), st.sampled_from(["Lead", "Contact"]),
              st.dictionaries(st.sampled_from(SF_LEAD_FIELDS) | nasty_text, json_values,
                              max_size=10)),
    st.tuples(st.just("hubspot"), st.just("contacts"),
              st.dictionaries(st.sampled_from(HS_CONTACT_FIELDS) | nasty_text, json_values,
                              max_size=10)),
)

SETTING_KEYS = ["state_url", "mappings_dir", "ca_bundle", "interval_seconds", "jitter_seconds",
                "lease_seconds", "log_level", "log_format", "salesforce", "hubspot", "auth",
                "domain", "username", "password", "passwrod", "access_token", "base_url",
                "timeout_seconds", "daily_budget_share", "lookback_seconds", "unassigned_owners"]
config_trees = st.recursive(
    nasty_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(SETTING_KEYS) | nasty_text, inner,
                                            max_size=5)),
    max_leaves=10)
config_bytes = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"\xff\xfe\x00", b"a: [" * 5_000, b"{" * 3_000, b"- " * 2_000,
                     b"a: &x [*x]", b"salesforce: !!python/object:os.system {}",
                     "é: ü".encode("latin-1"), b"\xef\xbb\xbfstate_url: sqlite:///x.db"]),
)
