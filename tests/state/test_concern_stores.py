"""Each per-concern store against its worst input: more ids than one IN (...) takes, more rows
than one executemany chunk, repeated keys, mixed new and known rows (SQLite and Postgres)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.idset import IdSet
from state.common import CHUNK_ROWS, IN_LIST
from state.deadletters import MESSAGE_CHARS, RefusedPart
from state.flags import Flag
from state.runs import Key
from state.store import CursorState, MirrorRow, StateStore

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
MANY = 2 * IN_LIST + 7  # three IN (...) chunks, the last one short


def _leads(n: int) -> list[MirrorRow]:
    return [MirrorRow("salesforce", "Lead", f"00Q{i:06d}", {"Id": f"00Q{i:06d}"}, T0,
                      email_key=f"p{i}@x.com") for i in range(n)]


def test_mirror_reads_and_deletes_across_in_list_chunks(store: StateStore) -> None:
    store.mirror.upsert(_leads(MANY), now=T0)
    ids = [f"00Q{i:06d}" for i in range(MANY)]
    assert len(store.mirror.records("salesforce", "Lead", ids)) == MANY
    assert store.mirror.records("salesforce", "Lead", []) == []
    gone = store.mirror.mark_missing_deleted("salesforce", "Lead", IdSet(ids[:5]))
    assert len(gone) == MANY - 5
    live = [r for r in store.mirror.records("salesforce", "Lead") if not r.deleted]
    assert {r.remote_id for r in live} == set(ids[:5])
    assert store.persons.queued() == {("salesforce", "Lead", rid) for rid in gone}, \
        "a deletion is queued for matching in its own transaction"


def test_mirror_records_the_agents_writes_on_known_and_unknown_records(
    store: StateStore,
) -> None:
    store.mirror.upsert(_leads(2), now=T0)
    later = T0 + timedelta(minutes=1)
    store.mirror.record_written("salesforce", "Lead", {
        "00Q000001": {"Rating": "A"}, "00Qcreated": {"Rating": "B"}}, now=later)
    rows = {r.remote_id: r for r in store.mirror.records("salesforce", "Lead")}
    assert rows["00Q000001"].fields == {"Id": "00Q000001", "Rating": "A"}
    assert rows["00Qcreated"].fields == {"Rating": "B"} and rows["00Qcreated"].modstamp is None
    marks = store.mirror.agent_written("salesforce", "Lead", ["00Q000000", "00Q000001"])
    assert marks["00Q000000"] == {}
    assert marks["00Q000001"] == {"Rating": {"value": "A", "at": later.isoformat()}}
    assert store.mirror.cursors() == {}


def test_written_values_merge_into_what_the_mirror_holds_blanks_and_objects_included(
    store: StateStore,
) -> None:
    """One push's writes, mixed: plain values (merged by the database), a blank (held as
    null, not dropped) and an object (replacing the old one, not merged into it), on records
    the mirror knows with marks of earlier writes, and on records it has never seen; more
    than one executemany chunk of them."""
    old = MirrorRow("salesforce", "Lead", "00Qknown", {
        "Id": "00Qknown", "Rating": "C", "Track__c": "old", "Blob__c": {"a": 1, "b": 2},
        "Email": "p@x.com"}, T0)
    store.mirror.upsert([old, *_leads(CHUNK_ROWS + 2)], now=T0)
    first, later = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    store.mirror.record_written("salesforce", "Lead", {"00Qknown": {"Rating": "B"}}, now=first)
    many = {f"00Q{i:06d}": {"Rating": "A", "Score__c": i} for i in range(CHUNK_ROWS + 2)}
    store.mirror.record_written("salesforce", "Lead", {
        **many, "00Qknown": {"Rating": "A", "Score__c": 7.5, "Track__c": None,
                             "Blob__c": {"c": 3}},
        "00Qnew1": {"Rating": "A"}, "00Qnew2": {"Track__c": None}}, now=later)
    rows = {r.remote_id: r for r in store.mirror.records("salesforce", "Lead")}
    assert rows["00Qknown"].fields == {"Id": "00Qknown", "Rating": "A", "Score__c": 7.5,
                                      "Track__c": None, "Blob__c": {"c": 3},
                                      "Email": "p@x.com"}
    assert rows["00Qknown"].modstamp == T0, "a write is not a read: the stamp stays"
    assert rows["00Qnew1"].fields == {"Rating": "A"} and rows["00Qnew1"].modstamp is None
    assert rows["00Qnew2"].fields == {"Track__c": None}
    assert rows[f"00Q{CHUNK_ROWS + 1:06d}"].fields == {
        "Id": f"00Q{CHUNK_ROWS + 1:06d}", "Rating": "A", "Score__c": CHUNK_ROWS + 1}
    marks = store.mirror.agent_written("salesforce", "Lead", ["00Qknown", "00Qnew2"])
    at = later.isoformat()
    assert marks["00Qknown"] == {"Rating": {"value": "A", "at": at},
                                 "Score__c": {"value": 7.5, "at": at},
                                 "Track__c": {"value": None, "at": at},
                                 "Blob__c": {"value": {"c": 3}, "at": at}}
    assert marks["00Qnew2"] == {"Track__c": {"value": None, "at": at}}
    last = later + timedelta(minutes=1)
    store.mirror.record_written("salesforce", "Lead", {"00Qknown": {"Rating": "B"}}, now=last)
    marks = store.mirror.agent_written("salesforce", "Lead", ["00Qknown"])
    assert marks["00Qknown"]["Rating"] == {"value": "B", "at": last.isoformat()}
    assert marks["00Qknown"]["Blob__c"] == {"value": {"c": 3}, "at": at}, \
        "a merge of plain values keeps the marks of the other fields"
    assert store.mirror.records("salesforce", "Lead", ["00Qknown"])[0].fields["Track__c"] \
        is None


def test_persons_are_created_in_order_past_one_chunk_and_links_can_be_kept(
    store: StateStore,
) -> None:
    keys = [f"p{i}@x.com" for i in range(CHUNK_ROWS + 3)]
    ids = store.persons.create(keys, now=T0)
    assert len(ids) == len(set(ids)) == len(keys) and ids == sorted(ids)
    assert store.persons.create([]) == []
    ref = ("salesforce", "Lead", "00Q1")
    store.persons.link([(*ref, ids[0], "email")], now=T0)
    store.persons.link([(*ref, ids[1], "cross_id")], now=T0, keep_existing=True)
    assert store.persons.links() == {ref: ids[0]}
    store.persons.link([(*ref, ids[1], "cross_id")], now=T0)
    assert store.persons.links() == {ref: ids[1]}


def test_the_match_queue_is_filled_by_a_page_and_emptied_by_matched(store: StateStore) -> None:
    store.commit_page("sf.Lead", _leads(3), [], CursorState(T0, "00Q000002"), now=T0)
    queued = store.persons.queued()
    assert len(queued) == 3
    store.persons.matched(sorted(queued)[:2])
    assert store.persons.queued() == {sorted(queued)[2]}
    store.persons.matched([])  # nothing to take off: no statement, no error


def test_a_page_does_not_queue_its_unchanged_refs_but_keeps_one_queued_before(
        store: StateStore) -> None:
    first, second, third = _leads(3)
    store.commit_page("sf.Lead", [first], [], CursorState(T0, "00Q000000"), now=T0)
    unchanged = {("salesforce", "Lead", r.remote_id) for r in (first, second)}
    store.commit_page("sf.Lead", [first, second, third], [], CursorState(T0, "00Q000002"),
                      now=T0, unchanged=unchanged)
    assert store.persons.queued() == {("salesforce", "Lead", r.remote_id)
                                      for r in (first, third)}


def test_decisions_are_read_back_across_in_list_chunks(store: StateStore) -> None:
    pids = store.persons.create([None] * MANY, now=T0)
    decisions = [{"person_id": pid, "grade": "B", "score": pid % 100, "segment": None,
                  "stage": "Lead", "owner": None, "track": None, "mql_date": None,
                  "reasons": {}, "evaluated_at": T0} for pid in pids]
    store.commit_evaluation([], decisions, {pid: None for pid in pids}, {}, now=T0)
    assert len(store.decisions.of(pids)) == MANY
    assert store.decisions.of([]) == {}
    assert store.decisions.of([pids[3]])[pids[3]]["score"] == pids[3] % 100
    assert store.persons.to_evaluate(T0) == []


def test_decisions_before_an_evaluation_keep_every_column_and_only_the_carried_state(
        store: StateStore) -> None:
    """What a new evaluation reads of a stored decision: every column as ``of`` gives it,
    across IN-list chunks, with the reasons cut to the engine's carried ``state`` (the rest
    of the reasons is ~10 KB a person once parsed, held while a chunk commits)."""
    pids = store.persons.create([None] * MANY, now=T0)
    reasons = {"grade": ["title: VP +20"] * 50, "score": ["form +10"] * 50,
               "state": {"mql_at": "2026-01-01T00:00:00+00:00", "score_peak": 80}}
    decisions = [{"person_id": pid, "grade": "A", "score": pid % 100, "segment": "ent",
                  "stage": "MQL", "owner": "005A", "track": None, "mql_date": None,
                  "reasons": reasons if pid != pids[1] else {"grade": []},
                  "evaluated_at": T0} for pid in pids]
    store.commit_evaluation([], decisions, {pid: None for pid in pids}, {}, now=T0)
    full, cut = store.decisions.of(pids), store.decisions.before(pids)
    assert cut.keys() == full.keys() and len(cut) == MANY
    for pid in pids:
        assert {k: v for k, v in cut[pid].items() if k != "reasons"} == \
            {k: v for k, v in full[pid].items() if k != "reasons"}
    assert cut[pids[0]]["reasons"] == {"state": reasons["state"]}
    assert cut[pids[1]]["reasons"] == {}          # a decision with no state carries none
    assert store.decisions.before([]) == {}


def test_refused_fields_become_one_dead_letter_per_record_with_a_bounded_message(
    store: StateStore,
) -> None:
    first = RefusedPart("salesforce", "Lead", "00Q1", None, {"Rating": "A"}, "INVALID",
                        "x" * (MESSAGE_CHARS * 3))
    again = RefusedPart("salesforce", "Lead", "00Q1", None, {"Rating": "B"}, "TOO_LONG", "no")
    assert store.outbox.add_refused([first], now=T0) == 1
    assert len(store.outbox.dead_letters()[0]["message"]) == MESSAGE_CHARS
    assert store.outbox.add_refused([again], now=T0) == 1
    (letter,) = store.outbox.dead_letters()
    assert letter["code"] == "TOO_LONG" and letter["fields"] == {"Rating": "B"}
    assert store.outbox.add_refused([]) == 0


def test_flags_keep_one_item_per_key_and_the_last_detail(store: StateStore) -> None:
    flags = [Flag("unknown_value", f"k{i % 3}", {"n": i}) for i in range(10)]
    assert store.flags.many(flags, now=T0) == 3
    store.flags.flag("unknown_value", "k0", {"n": "again"}, now=T0)
    items = {item["key"]: item["detail"] for item in store.flags.items()}
    assert items == {"k0": {"n": "again"}, "k1": {"n": 7}, "k2": {"n": 8}}
    assert store.flags.many([]) == 0
    assert len(store.flags.items(limit=1)) == 1


def test_key_value_state_by_its_named_keys_reaches_status(store: StateStore) -> None:
    assert store.runs.get_value(Key.API_USAGE) is None
    assert store.runs.get_value(Key.API_USAGE, {}) == {}
    store.runs.set_value(Key.API_USAGE, {"salesforce": {"used": 1}}, now=T0)
    store.runs.set_value(Key.API_USAGE, {"salesforce": {"used": 2}}, now=T0)
    store.commit_evaluation([], [], {}, {Key.LAST_CYCLE: {"status": "ok"}}, now=T0)
    summary = store.status_summary()
    assert summary["api_usage"] == {"salesforce": {"used": 2}}
    assert summary["last_cycle"] == {"status": "ok"}
    assert store.runs.last_completed_at() is None


def test_match_rows_hold_only_the_named_fields_as_stored(store: StateStore) -> None:
    """What the database takes out of the stored JSON is the value itself (text with quotes
    and accents, a number), a blank or missing field is left out, and deleted records and
    e-mail keys come along; across more than one IN (...) chunk."""
    odd = 'with "quotes", \\\\ and é'
    rows = [MirrorRow("hubspot", "contacts", str(i), {
        "email": f"p{i}@x.com", "salesforcecontactid": f"003{i:06d}", "other": "x" * 50},
        T0, email_key=f"p{i}@x.com") for i in range(MANY)]
    rows += [MirrorRow("hubspot", "contacts", "odd", {"salesforcecontactid": odd,
                                                       "salesforceleadid": 42}, T0),
             MirrorRow("hubspot", "contacts", "blank", {"salesforcecontactid": None}, T0),
             MirrorRow("hubspot", "contacts", "gone", {"salesforcecontactid": "003x"}, T0,
                       deleted=True)]
    store.mirror.upsert(rows, now=T0)
    ids = [r.remote_id for r in rows] + ["never-seen"]
    got = {r.remote_id: r for r in store.mirror.match_rows(
        "hubspot", "contacts", ids, ["salesforcecontactid", "salesforceleadid"])}
    assert len(got) == MANY + 3
    assert got["7"].fields == {"salesforcecontactid": "003000007"}
    assert got["7"].email_key == "p7@x.com" and got["7"].modstamp == T0
    assert got["odd"].fields == {"salesforcecontactid": odd, "salesforceleadid": 42}
    assert got["blank"].fields == {}
    assert got["gone"].deleted and not got["7"].deleted
