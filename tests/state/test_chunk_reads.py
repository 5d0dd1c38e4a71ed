"""What an evaluation reads for a chunk of persons (their links, records, marks, activities
and the e-mails they hold), each read's ids bound as ONE parameter (state/db.one_of): the
worst ids (NUL, unicode, quotes, SQL and JSON syntax, a longer id sharing a stored one's
first 64 characters, more ids than an IN list took, none at all) find exactly their rows,
on SQLite and on Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from state.common import IN_LIST
from state.store import ActivityRow, CursorState, MirrorRow, StateStore

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LONG = "L" * 64
ODD = ["é😀 ünï", "x'y\"z\\", "%s %(ids)s ?", "a,b", "[\"]\"", " ", "NULL", LONG]
MANY = [f"00Q{i:06d}" for i in range(2 * IN_LIST + 7)]


def _lead(rid: str, email: str | None = None, deleted: bool = False) -> MirrorRow:
    return MirrorRow("salesforce", "Lead", rid, {"Id": rid, "Email": email}, T0, deleted,
                     email)


def test_records_are_found_by_the_worst_ids_and_only_by_their_own(store: StateStore) -> None:
    store.mirror.upsert([_lead(rid) for rid in [*ODD, *MANY, "nulcut"]], now=T0)
    store.mirror.record_written("salesforce", "Lead", {"x'y\"z\\": {"Rating": "A"}},
                                now=T0 + timedelta(minutes=1))
    asked = [("salesforce", "Lead", rid) for rid in [*ODD, *MANY]]
    found = store.mirror.person_rows([*asked, ("salesforce", "Lead", LONG + "x"),
                                      ("salesforce", "Contact", ODD[0]),
                                      ("hubspot", "Lead", ODD[1])])
    assert set(found) == set(asked), "a longer id, another object or system finds nothing"
    row = found[("salesforce", "Lead", ODD[0])][0]
    assert (row.fields, row.modstamp, row.deleted) == ({"Id": ODD[0], "Email": None}, T0,
                                                       False)
    assert found[("salesforce", "Lead", "x'y\"z\\")][1] == {"Rating": {
        "value": "A", "at": (T0 + timedelta(minutes=1)).isoformat()}}
    assert all(marks == {} and type(marks) is dict
               for ref, (_row, marks) in found.items() if ref[2] != "x'y\"z\\")
    # a NUL is taken out of every bound string (the stored id lost it on the way in too)
    assert set(store.mirror.person_rows([("salesforce", "Lead", "nul\x00cut")])) == {
        ("salesforce", "Lead", "nulcut")}
    assert store.mirror.person_rows([]) == {}


def test_marks_are_read_as_written_and_blank_marks_as_none(store: StateStore) -> None:
    """No marks (an empty object), and marks holding a blank value."""
    store.mirror.upsert([_lead("m1"), _lead("m2")], now=T0)
    store.mirror.record_written("salesforce", "Lead", {"m2": {"Rating": None}}, now=T0)
    found = store.mirror.person_rows([("salesforce", "Lead", "m1"), ("salesforce", "Lead", "m2")])
    assert found[("salesforce", "Lead", "m1")][1] == {}
    assert found[("salesforce", "Lead", "m2")][1] == {"Rating": {"value": None,
                                                                  "at": T0.isoformat()}}


def test_links_of_many_persons_come_back_in_one_read(store: StateStore) -> None:
    links = [("salesforce", "Lead", rid, i + 1, "email") for i, rid in enumerate(MANY)]
    links += [("hubspot", "contacts", ODD[0], 1, "email"), ("hubspot", "contacts", "9", 2,
                                                              "cross_id")]
    store.persons.link(links, now=T0)
    refs = store.persons.refs_of(range(1, len(MANY) + 5))
    assert len(refs) == len(MANY)
    assert sorted(refs[1]) == [("hubspot", "contacts", ODD[0]), ("salesforce", "Lead", MANY[0])]
    assert sorted(refs[2]) == [("hubspot", "contacts", "9"), ("salesforce", "Lead", MANY[1])]
    assert store.persons.refs_of([]) == {}
    assert store.persons.refs_of([len(MANY) + 9]) == {}


def test_email_holders_are_the_live_records_holding_the_worst_keys(store: StateStore) -> None:
    keys = [f"{odd}@x.com" for odd in ODD[:-1]] + [f"p{i}@x.com" for i in range(IN_LIST + 3)]
    store.mirror.upsert([_lead(f"r{i}", key) for i, key in enumerate(keys)]
                        + [_lead("gone", keys[0], deleted=True)], now=T0)
    found = store.mirror.email_holders([*keys, "nobody@x.com", keys[0]])
    assert sorted(found) == sorted(("salesforce", "Lead", f"r{i}", key)
                                   for i, key in enumerate(keys))
    assert store.mirror.email_holders([]) == []


@pytest.mark.parametrize("ids", [ODD, MANY])
def test_activity_tuples_are_the_activity_rows_less_their_ref(store: StateStore,
                                                              ids: list[str]) -> None:
    rows = [ActivityRow("hubspot", f"e{i}-{n}", "page_view", T0 + timedelta(seconds=n),
                        "contacts", rid, {"url": f"/{n % 2}"}, None)
            for i, rid in enumerate(ids) for n in range(2)]
    rows.append(ActivityRow("salesforce", "t1", "call", T0, "Lead", ids[0], {}, 7))
    store.commit_page("hubspot.web_events", [], rows, CursorState(T0, None, frozenset()))
    refs = [("contacts", rid) for rid in ids] + [("Lead", ids[0]), ("Contact", ids[0])]
    tuples, full = store.mirror.activity_tuples(refs), store.mirror.activities_for(refs)
    assert set(tuples) == set(full) == {*(("contacts", rid) for rid in ids), ("Lead", ids[0])}
    for key, found in full.items():
        assert [(a.system, a.source_id, a.kind, a.occurred_at, a.details, a.person_id)
                for a in found] == tuples[key]
        assert all(a.ref_object == key[0] and a.ref_id == key[1] for a in found)
    assert tuples[("contacts", ids[0])][1][3] == T0 + timedelta(seconds=1)
    assert tuples[("contacts", ids[0])][1][3].tzinfo is UTC
    assert store.mirror.activity_tuples([]) == {}


def test_once_each_converts_each_distinct_value_once_and_keeps_the_answers_apart() -> None:
    """The memo every chunk read and the commit's time columns share: one conversion per
    distinct value (equal values are one key: 1 and 1.0, two zones of one moment), each
    value's own answer, and a conversion that fails is not remembered."""
    from state.db import once_each

    calls: list[object] = []

    def convert(value: object) -> str:
        calls.append(value)
        if value == "bad":
            raise ValueError(value)
        return f"<{value}>"

    once = once_each(convert)
    moment = datetime(2026, 1, 1, 12, tzinfo=UTC)
    elsewhere = moment.astimezone(timezone(timedelta(hours=5)))
    values: list[object] = ["a", "b", "a", 1, 1.0, moment, elsewhere, None, "b"]
    assert [once(v) for v in values] == ["<a>", "<b>", "<a>", "<1>", "<1>", f"<{moment}>",
                                         f"<{moment}>", "<None>", "<b>"]
    assert calls == ["a", "b", 1, moment, None]
    for _ in range(2):
        with pytest.raises(ValueError):
            once("bad")
    assert calls[-2:] == ["bad", "bad"]
    assert once_each(convert)("a") == "<a>" and calls[-1] == "a", "each memo is its own"
