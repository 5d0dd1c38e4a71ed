"""The match's and the pull's reads of records, links, marks and activities, their ids bound
as ONE parameter (state/db.one_of): the worst ids (NUL, unicode, quotes, SQL and JSON syntax,
a longer id sharing a stored one's first 64 characters, more than an IN list took, none at
all) find exactly their own rows, of their own system and object, on SQLite and Postgres."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime, timedelta

import pytest

from state.common import IN_LIST
from state.store import ActivityRow, CursorState, MirrorRow, StateStore

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
LONG = "L" * 64
ODD = ["é😀 ünï", "x'y\"z\\", "%s %(ids)s ?", "a,b", "[\"]\"", " ", "NULL", LONG]
MANY = [f"00Q{i:06d}" for i in range(2 * IN_LIST + 7)]
ALL = [*ODD, *MANY]
NOT_THEIRS = [LONG + "x", "nobody", "nul\x00"]


def _lead(rid: str, system: str = "salesforce", object_name: str = "Lead") -> MirrorRow:
    return MirrorRow(system, object_name, rid, {"Id": rid, "Email": f"{rid}@x.com",
                                                "N": None}, T0, False, rid.lower())


def _seed(store: StateStore) -> None:
    store.mirror.upsert([_lead(rid) for rid in ALL] + [_lead(ODD[0], "hubspot"),
                                                       _lead(ODD[1], object_name="Contact")],
                        now=T0)


def test_records_and_match_rows_by_the_worst_ids(store: StateStore) -> None:
    _seed(store)
    asked = [*ALL, *NOT_THEIRS, ODD[0]]   # a repeated id: its row once (IN lists gave
    # it once per chunk that held it; every caller keys the rows by id)
    records = store.mirror.records("salesforce", "Lead", asked)
    assert sorted(r.remote_id for r in records) == sorted(ALL)
    assert all(r == _lead(r.remote_id) for r in records)
    assert {r.object for r in store.mirror.records("salesforce", None, iter(ODD[:2]))} == {
        "Lead", "Contact"}
    assert store.mirror.records("salesforce", "Lead", []) == []
    rows = store.mirror.match_rows("salesforce", "Lead", asked, ["Email", "N"])
    assert sorted((r.remote_id, r.fields["Email"]) for r in rows) == sorted(
        (rid, f"{rid}@x.com") for rid in ALL)
    assert all(r.fields.keys() == {"Email"} and r.email_key == r.remote_id.lower()
               for r in rows), "a blank named field is left out"
    assert store.mirror.match_rows("salesforce", "Lead", [], ["Email"]) == []


def test_agent_written_and_links_by_the_worst_ids(store: StateStore) -> None:
    _seed(store)
    store.mirror.record_written("salesforce", "Lead", {ODD[1]: {"Rating": "A"},
                                                        ODD[2]: {"Rating": None}}, now=T0)
    written = store.mirror.agent_written("salesforce", "Lead", [*ALL, *NOT_THEIRS])
    assert set(written) == set(ALL)
    assert written[ODD[1]] == {"Rating": {"value": "A", "at": T0.isoformat()}}
    assert written[ODD[2]] == {"Rating": {"value": None, "at": T0.isoformat()}}
    assert all(written[rid] == {} for rid in MANY)
    assert store.mirror.agent_written("salesforce", "Lead", iter(())) == {}

    links = [("salesforce", "Lead", rid, n + 1, "email") for n, rid in enumerate(ALL)]
    store.persons.link([*links, ("hubspot", "Lead", ODD[0], 999, "email")], now=T0)
    found = store.persons.links_of([("salesforce", "Lead", rid) for rid in [*ALL, *NOT_THEIRS]])
    assert found == {(s, o, r): p for s, o, r, p, _how in links}
    assert store.persons.links_of([]) == {}


def test_activities_by_source_by_the_worst_keys(store: StateStore) -> None:
    rows = [ActivityRow(system, f"{system}:{rid}", "page_view", T0 + timedelta(seconds=n),
                        "contacts", rid, {"url": rid}, None)
            for n, rid in enumerate(ALL) for system in ("hubspot", "salesforce")]
    store.commit_page("hubspot.web_events", [], rows, CursorState(T0, None, frozenset()))
    keys = [("hubspot", f"hubspot:{rid}") for rid in ALL] + [("salesforce", "hubspot:x'y")]
    found = store.mirror.activities_by_source([*keys, ("hubspot", "nul\x00")])
    assert found == {(r.system, r.source_id): r for r in rows if r.system == "hubspot"}
    assert store.mirror.activities_by_source([]) == {}


def test_person_rows_are_mirror_rows_as_their_constructor_makes_them(store: StateStore) -> None:
    """person_rows builds each MirrorRow by filling its attribute dict (mirror._new_row):
    that holds only while MirrorRow has no __slots__ and no __post_init__."""
    assert not hasattr(MirrorRow, "__slots__") and not hasattr(MirrorRow, "__post_init__")
    _seed(store)
    found = store.mirror.person_rows([("salesforce", "Lead", rid) for rid in ODD])
    for (system, object_name, rid), (row, _marks) in found.items():
        made = MirrorRow(system, object_name, rid, row.fields, row.modstamp, row.deleted,
                         row.email_key)
        assert type(row) is MirrorRow and row == made and repr(row) == repr(made)
        assert list(vars(row)) == list(vars(made)), "the fields in the constructor's order"
        assert pickle.loads(pickle.dumps(row)) == made
        with pytest.raises(dataclasses.FrozenInstanceError):
            row.remote_id = "other"  # type: ignore[misc]
