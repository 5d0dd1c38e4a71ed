"""map_person given a list for problems finds, in the pass that reads the values, what
record_problems finds in each record (in the records' order), and the same values; the
two-systems merge (one live record in each of two systems) gives the general merge's
answer, its error included, on generated records with the worst values."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings

from syncagent.engine.mapping import Problem, map_person, record_problems

from .test_eval_mapping import FIELDS, T0, _outcome, _Rec, _remote_names, _slow_map, records


def _with_problems(recs: list[_Rec]) -> Any:
    problems: list[Problem] = []
    profile = map_person(recs, FIELDS, problems)
    return profile.values, profile.sources, problems


def _apart(recs: list[_Rec]) -> Any:
    """The values and each record's problems, found in two passes as before."""
    profile = map_person(recs, FIELDS)
    return profile.values, profile.sources, [
        (place, name, reason) for place, rec in enumerate(recs)
        for name, reason in record_problems(rec, FIELDS)]


def _outcome3(run: Any) -> Any:
    try:
        values, sources, problems = run()
    except Exception as exc:   # the same error both ways is the same outcome
        return type(exc).__name__
    return repr(list(values.items())), list(sources.items()), problems


@settings(max_examples=1_500, deadline=None, database=None, derandomize=True)
@given(records())
def test_problems_found_in_the_read_are_those_of_each_record(recs: list[_Rec]) -> None:
    assert _outcome3(lambda: _with_problems(recs)) == _outcome3(lambda: _apart(recs))


@settings(max_examples=1_500, deadline=None, database=None, derandomize=True)
@given(records())
def test_two_systems_merge_gives_the_general_merge_s_answer(recs: list[_Rec]) -> None:
    pair = [r for r in recs if not r.deleted][:2]
    if len(pair) == 2 and pair[0].system != pair[1].system:
        assert _outcome(lambda: (lambda p: (p.values, p.sources))(map_person(pair, FIELDS))) \
            == _outcome(lambda: _slow_map(pair))


def test_worst_values_in_both_records_of_two_systems() -> None:
    """Every mapped field of a Lead and a contact holds the same bad value: each record's
    problems, the Lead's first as given, and the values the merge gives."""
    for value in (math.nan, 10**19, "9" * 80, -math.inf, "1e999", None, "  "):
        lead = _Rec("salesforce", "Lead", dict.fromkeys(_remote_names("salesforce", "Lead"),
                                                        value), T0)
        contact = _Rec("hubspot", "contacts",
                       dict.fromkeys(_remote_names("hubspot", "contacts"), value), T0)
        for pair in ([lead, contact], [contact, lead]):
            assert _outcome3(lambda pair=pair: _with_problems(pair)) == \
                _outcome3(lambda pair=pair: _apart(pair))
            places = [place for place, _name, _reason in _with_problems(pair)[2]]
            assert places == sorted(places) and (value in (None, "  ", "1e999") or places)
