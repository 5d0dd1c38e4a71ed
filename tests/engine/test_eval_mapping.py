"""map_person's shortcuts (one live record: no merge; two_way: a loop, not a sort and a max)
give the merge's own answer: values, sources, their order, and the error, if any, of the
merge they replace (kept here as it was), on generated records with the worst values; and
record_problems' reordered tests find what its loop as it was found."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from syncagent.engine import Rules, load_rules, mapping
from syncagent.engine.mapping import (
    CompiledField,
    Found,
    RemoteRecordLike,
    _pick,
    map_person,
    plan_of,
    record_problems,
)
from syncagent.engine.normalise import MAX_ABS_NUMBER, value_problem

from ..fuzz.strategies import nasty_numbers, nasty_text
from .conftest import SHIPPED
from .test_mapping import Rec as _Rec

RULES: Rules = load_rules(SHIPPED)
FIELDS = RULES.compiled.fields
OBJECTS = [("salesforce", "Lead"), ("salesforce", "Contact"), ("hubspot", "contacts")]
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _slow_pick(spec: CompiledField, found: Found) -> tuple[str | None, Any]:
    """mapping._pick's two_way choice as it was (a sort, a list and a max); the other
    policies, unchanged, are mapping's own."""
    preferred = spec.source
    if spec.only_source or spec.sync != "two_way" or len(found) < 2:
        return _pick(spec, found)
    order = [preferred, *sorted(s for s in found if s != preferred)]
    filled = [s for s in order if s in found and found[s][1] is not None]
    if not filled:
        first = next(s for s in order if s in found)
        return first, found[first][1]
    latest = max(filled, key=lambda s: (found[s][0].modstamp, -order.index(s)))
    return latest, found[latest][1]


def _slow_map(records: Sequence[RemoteRecordLike]) -> tuple[dict[str, Any], dict[str, str]]:
    """map_person before its shortcuts: every person through the merge, whose two_way
    choice is the old one."""
    with patch.object(mapping, "_pick", _slow_pick):
        profile = mapping._merged(records, FIELDS, plan_of(FIELDS))
    return profile.values, profile.sources


def _outcome(run: Any) -> Any:
    try:
        values, sources = run()
    except Exception as exc:   # the same error both ways is the same outcome
        return type(exc).__name__
    return repr(list(values.items())), list(sources.items())   # repr: NaN equals itself


def _remote_names(system: str, obj: str) -> list[str]:
    return [r.name for r in plan_of(FIELDS).readers(system, obj)] + ["Unmapped__c"]


class _Text(str):
    pass


class _Float(float):
    pass


WORST = st.one_of(st.none(), st.booleans(), nasty_numbers, nasty_text,
                  st.builds(_Text, nasty_text), st.builds(_Float, st.floats()),
                  st.sampled_from([10**18, 10**18 + 1, -(10**19), 1e18, 1e19, "9" * 65,
                                   " 9" + "0" * 70, "1e999", "1" * 30, _Text("1" * 80)]),
                  st.sampled_from(["  ", "\x00", "+15550000001", "+4402079460958", "GB",
                                   "United Kingdom", "Web", "Open", "VP Sales", "a@b.co",
                                   "A@B.CO ", "mailto:x@y.z", "1,200", "51-200", "x" * 100_000]))
STAMPS = st.one_of(st.sampled_from([T0, T0 + timedelta(days=1)]),
                   st.builds(lambda d: T0 + timedelta(seconds=d), st.integers(0, 5)),
                   st.just(T0.replace(tzinfo=None)))   # naive against aware: an error


@st.composite
def records(draw: st.DrawFn) -> list[_Rec]:
    out = []
    for _ in range(draw(st.integers(1, 3))):
        system, obj = draw(st.sampled_from(OBJECTS))
        names = draw(st.lists(st.sampled_from(_remote_names(system, obj)), unique=True))
        fields = {name: draw(WORST) for name in names}
        out.append(_Rec(system, obj, fields, draw(STAMPS), draw(st.booleans())))
    return out


@settings(max_examples=1_500, deadline=None, database=None, derandomize=True)
@given(records())
def test_map_person_gives_the_merge_s_answer(recs: list[_Rec]) -> None:
    def fast() -> tuple[dict[str, Any], dict[str, str]]:
        profile = map_person(recs, FIELDS)
        return profile.values, profile.sources

    assert _outcome(fast) == _outcome(lambda: _slow_map(recs))


def test_one_record_keeps_the_fields_order_and_skips_the_other_system_s_always_fields() -> None:
    for system, obj in OBJECTS:
        fields = {name: f"v {name}" for name in _remote_names(system, obj)}
        rec = _Rec(system, obj, fields, T0)
        profile = map_person([rec], FIELDS)
        assert (list(profile.values.items()), list(profile.sources.items())) == \
            tuple(list(d.items()) for d in _slow_map([rec]))
        for spec in FIELDS:
            if spec.only_source and spec.source != system:
                assert spec.name not in profile.values


def test_a_deleted_lone_record_counts_for_nothing() -> None:
    rec = _Rec("salesforce", "Lead", {"Email": "a@b.co"}, T0, deleted=True)
    assert map_person([rec], FIELDS).values == {} == _slow_map([rec])[0]


def test_two_way_ties_go_to_the_preferred_system_then_by_name() -> None:
    lead = _Rec("salesforce", "Lead", {"FirstName": "Sam"}, T0)
    contact = _Rec("hubspot", "contacts", {"firstname": "Samuel"}, T0)
    for order in ([lead, contact], [contact, lead]):
        profile = map_person(order, FIELDS)
        assert (profile.values["first_name"], profile.sources["first_name"]) == \
            ("Sam", "salesforce")
    newer = _Rec("hubspot", "contacts", {"firstname": "Samuel"}, T0 + timedelta(seconds=1))
    assert map_person([lead, newer], FIELDS).values["first_name"] == "Samuel"
    blank = _Rec("hubspot", "contacts", {"firstname": "  "}, T0 + timedelta(days=1))
    assert map_person([lead, blank], FIELDS).values["first_name"] == "Sam"


def _slow_problems(record: RemoteRecordLike) -> list[tuple[str, str]]:
    """record_problems' loop as it was (the reader's attributes, None tested first)."""
    problems: list[tuple[str, str]] = []
    for reader in plan_of(FIELDS).readers(record.system, record.object):
        raw = record.fields.get(reader.name)
        if raw is None or (type(raw) in (int, float) and abs(raw) <= MAX_ABS_NUMBER):
            continue
        if reader.kind not in ("integer", "number") and not isinstance(raw, float):
            continue
        reason = value_problem(reader.kind, raw)
        if reason is not None:
            problems.append((reader.name, reason))
    return problems


@settings(max_examples=1_500, deadline=None, database=None, derandomize=True)
@given(records())
def test_record_problems_finds_what_its_loop_found(recs: list[_Rec]) -> None:
    for rec in recs:
        assert record_problems(rec, FIELDS) == _slow_problems(rec)


def test_record_problems_on_the_worst_numbers_and_texts() -> None:
    worst = [None, "", " ", "\x00", math.nan, -math.inf, _Float("nan"), True, 10**18,
             10**18 + 1, 1e19, "9" * 65, _Text("9" * 65), "1e999", "12", 12.5, "x" * 100_000]
    for system, obj in OBJECTS:
        for value in worst:
            rec = _Rec(system, obj, dict.fromkeys(_remote_names(system, obj), value), T0)
            assert record_problems(rec, FIELDS) == _slow_problems(rec)
    nan = _Rec("salesforce", "Lead", {"Title": math.nan, "NumberOfEmployees": 10**19}, T0)
    assert [name for name, _ in record_problems(nan, FIELDS)] == ["Title", "NumberOfEmployees"]
