"""Field-level isolation on Salesforce writes, and the HubSpot own-write intervals (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.base import FieldError, WriteItem, WriteRef, WriteResult
from connectors.hubspot.own_writes import OwnWrites, ranges
from connectors.salesforce.isolate import field_errors, write_isolated
from tests.connectors.conftest import sf_connector


def _refused(item: WriteItem, *errors: FieldError) -> WriteResult:
    return WriteResult(WriteRef("Lead", item.id), "rejected", item.id, errors[0].code,
                       errors[0].message, field_errors=errors)


def test_an_unknown_field_is_named_from_the_message_when_fields_is_empty() -> None:
    errors = field_errors([{"statusCode": "INVALID_FIELD", "fields": [],
                            "message": "No such column 'Industy' on sobject of type Lead"}])
    assert [e.field for e in errors] == ["Industy"]


def test_a_record_with_any_error_not_tied_to_a_field_is_not_isolated() -> None:
    assert field_errors([
        {"statusCode": "STRING_TOO_LONG", "fields": ["Title"], "message": "too long"},
        {"statusCode": "CANNOT_UPDATE_CONVERTED_LEAD", "fields": [], "message": "converted"},
    ]) == ()
    assert field_errors([{"statusCode": "DUPLICATE_VALUE", "fields": ["Email"],
                          "message": "dup"}]) == ()


def test_refused_records_go_again_together_without_the_named_fields() -> None:
    """All re-sent records travel in ONE write; a key, the Id and a record with nothing else
    left are never trimmed."""
    bad = FieldError("industy", "INVALID_FIELD", "No such column 'Industy'")
    batch = [WriteItem({"Industy": "x", "Lead_Grade__c": "A"}, id="1"),
             WriteItem({"Lead_Grade__c": "B"}, id="2"),
             WriteItem({"Industy": "y", "Lead_Score__c": 5}, id="3"),
             WriteItem({"Industy": "z"}, id="4"),
             WriteItem({"Syncagent_Id__c": "k", "LastName": "L"}, id="5")]
    first = [_refused(batch[0], bad), WriteResult(WriteRef("Lead", "2"), "ok", "2"),
             _refused(batch[2], bad), _refused(batch[3], bad),
             _refused(batch[4], FieldError("Syncagent_Id__c", "INVALID_FIELD", "no"))]
    calls: list[list[WriteItem]] = []

    def write(items: Sequence[WriteItem]) -> list[WriteResult]:
        calls.append(list(items))
        return [WriteResult(WriteRef("Lead", i.id), "ok", i.id) for i in items]

    out = write_isolated(batch, first, write, frozenset({"Syncagent_Id__c"}))
    assert [[dict(i.fields) for i in call] for call in calls] == [
        [{"Lead_Grade__c": "A"}, {"Lead_Score__c": 5}]]
    assert [r.status for r in out] == ["ok", "ok", "ok", "rejected", "rejected"]
    assert [e.field for e in out[0].dropped] == ["industy"] and out[1].dropped == ()


def test_a_second_bad_field_found_on_the_retry_is_dropped_too() -> None:
    batch = [WriteItem({"Status": "Bogus", "Title": "t" * 300, "Lead_Grade__c": "A"}, id="1")]
    answers = iter([
        [_refused(batch[0], FieldError("Title", "STRING_TOO_LONG", "too long"))],
        [WriteResult(WriteRef("Lead", "1"), "ok", "1")]])
    first = [_refused(batch[0], FieldError("Status", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                           "bad value"))]
    out = write_isolated(batch, first, lambda items: next(answers))
    assert out[0].ok and [e.field for e in out[0].dropped] == ["Status", "Title"]


def test_the_sandbox_refuses_a_restricted_value_and_the_grade_still_lands(
        sandbox_factory: Any) -> None:
    """Through simple-salesforce and the sandbox: a restricted picklist value is dropped, the
    rest of the record is written, and the result names the dropped field."""
    sandbox = sandbox_factory(leads=30, seed=43)
    conn = sf_connector(sandbox)
    lead = next(r for r in sandbox.ctx.sf.records("Lead") if not r.get("IsConverted"))
    [result] = conn.write("Lead", "update", [WriteItem(
        {"Status": "Not A Status", "Lead_Grade__c": "C-", "Industy": "Retail"}, id=lead["Id"])])
    assert result.ok, result
    assert {e.field.casefold() for e in result.dropped} == {"status", "industy"}
    after = next(r for r in sandbox.ctx.sf.records("Lead") if r["Id"] == lead["Id"])
    assert after["Lead_Grade__c"] == "C-" and after["Status"] == lead["Status"]
    assert conn.calls.by_operation().get("collections_patch") <= 3


def test_skipped_intervals_split_the_window_into_ranges_around_them() -> None:
    assert ranges(0, 100, [[10, 20], [50, 60]]) == [(0, 9), (21, 49), (61, 100)]
    assert ranges(0, 100, [[0, 20]]) == [(21, 100)]
    assert ranges(0, 100, []) == [(0, 100)]
    assert ranges(None, 100, [[10, 20]]) == [(None, 100)]   # a first read skips nothing


def test_own_writes_are_kept_per_object_clipped_and_at_most_four() -> None:
    own = OwnWrites({})
    own.note("contacts", ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.400Z"])
    own.note("contacts", ["2026-01-01T00:00:00.900Z"])          # next batch: one interval
    own.note("contacts", ["2026-01-01T01:00:00.000Z"])
    base = 1767225600000
    assert own.inside("contacts", base - 10, base + 10_000) == [[base, base + 900]]
    assert own.inside("calls", base - 10, base + 10_000) == []  # other objects: nothing
    for hour in range(2, 9):
        own.note("contacts", [f"2026-01-01T0{hour}:00:00.000Z", f"2026-01-01T0{hour}:00:01Z"])
    assert len(own.inside("contacts", base, base + 10 * 3_600_000)) == 4
    again = OwnWrites(own.state())
    assert again.state() == own.state()
