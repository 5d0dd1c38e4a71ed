"""Matching records of both systems into persons: cross ids, e-mail, and no silent guesses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from state.store import ActivityRow, CursorState, MirrorRow, StateStore
from syncagent.pipeline import match as match_module
from syncagent.pipeline.match import match
from syncagent.pipeline.records import email_key

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(autouse=True, params=[1, 2_000], ids=["chunk-of-1", "one-chunk"])
def chunk_size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Every test also runs a record per chunk: what a record meets in an earlier chunk
    (its person, an e-mail's ambiguity) is read back from the state DB, not from memory."""
    monkeypatch.setattr(match_module, "CHUNK", request.param)
    return int(request.param)


@pytest.fixture
def store(sqlite_url: str) -> StateStore:
    store = StateStore(sqlite_url)
    store.upgrade()
    return store


def _row(system: str, obj: str, rid: str, **fields: object) -> MirrorRow:
    return MirrorRow(system, obj, rid, dict(fields), T0, email_key=email_key(system, obj, fields))


def _load(store: StateStore, *rows: MirrorRow) -> None:
    """As a pull does: the rows and the stream's cursor, queued for matching."""
    store.commit_page("test", list(rows), [], CursorState())


def test_a_lead_and_a_contact_with_one_email_become_one_person(store: StateStore) -> None:
    _load(store, _row("salesforce", "Lead", "00Q1", Email="Ana@Acme.com "),
                    _row("hubspot", "contacts", "501", email="ana@acme.com"))
    result = match(store, T0)
    links = store.persons.links()
    assert links[("salesforce", "Lead", "00Q1")] == links[("hubspot", "contacts", "501")]
    assert result.new_persons == 1 and result.dirty == 1
    assert store.persons.to_evaluate(T0) == [links[("salesforce", "Lead", "00Q1")]]


def test_a_cross_id_beats_a_different_email(store: StateStore) -> None:
    _load(store, _row("salesforce", "Lead", "00Q1", Email="old@acme.com"),
                    _row("hubspot", "contacts", "501", email="new@acme.com",
                         salesforceleadid="00Q1"))
    match(store, T0)
    links = store.persons.links()
    assert links[("salesforce", "Lead", "00Q1")] == links[("hubspot", "contacts", "501")]


def test_two_leads_sharing_an_email_are_flagged_and_never_picked(store: StateStore) -> None:
    _load(store, _row("salesforce", "Lead", "00Q1", Email="dup@acme.com"),
                  _row("salesforce", "Lead", "00Q2", Email="dup@acme.com"))
    match(store, T0)
    _load(store, _row("hubspot", "contacts", "501", email="dup@acme.com"))
    result = match(store, T0)
    links = store.persons.links()
    people = {links[("salesforce", "Lead", "00Q1")], links[("salesforce", "Lead", "00Q2")],
              links[("hubspot", "contacts", "501")]}
    assert len(people) == 3, "the HubSpot contact must not be joined to either lead"
    assert result.ambiguous == 1
    (item,) = store.flags.items()
    assert item["kind"] == "ambiguous_email" and item["key"].endswith("dup@acme.com")


def test_already_linked_records_keep_their_person_and_new_activity_marks_it_dirty(
    store: StateStore,
) -> None:
    _load(store, _row("salesforce", "Lead", "00Q1", Email="a@acme.com"))
    match(store, T0)
    (person,) = store.persons.links().values()
    store.persons.evaluated({person: None})
    store.commit_page("sf.Task", [], [ActivityRow("salesforce", "00T1", "call_connected", T0,
                                                  "Lead", "00Q1")],
                      CursorState())
    result = match(store, T0)
    assert result.dirty == 1 and result.new_persons == 0
    assert store.persons.to_evaluate(T0) == [person]


def test_records_pulled_before_a_crash_are_matched_by_the_next_cycle(
    store: StateStore,
) -> None:
    """The pull commits, the agent dies before matching: nothing pulled is forgotten."""
    _load(store, _row("salesforce", "Lead", "00Q1", Email="a@acme.com"))
    assert store.persons.queued() == {("salesforce", "Lead", "00Q1")}
    match(store, T0)  # the next cycle's match, with no new pull
    assert ("salesforce", "Lead", "00Q1") in store.persons.links()
    assert store.persons.queued() == set()


def test_three_leads_sharing_an_email_in_separate_chunks_stay_three_persons(
    store: StateStore,
) -> None:
    _load(store, *(_row("salesforce", "Lead", f"00Q{i}", Email="dup@acme.com")
                   for i in range(3)),
          _row("hubspot", "contacts", "501", email="dup@acme.com", salesforceleadid="00Q1"))
    result = match(store, T0)
    links = store.persons.links()
    leads = {links[("salesforce", "Lead", f"00Q{i}")] for i in range(3)}
    assert len(leads) == 3 and result.ambiguous == 1
    assert links[("hubspot", "contacts", "501")] == links[("salesforce", "Lead", "00Q1")], \
        "a cross id still joins the contact to its lead"
    assert result.dirty == 3 and result.new_persons == 3
