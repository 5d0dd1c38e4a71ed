"""Planning writes: only real differences, a rep's hand-set values kept, creates once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from state.store import MirrorRow, NewOutboxRow
from syncagent.engine import (
    Activity,
    CrmFacts,
    OwnerResult,
    PersonInput,
    Rules,
    TrackResult,
    evaluate,
    load_rules,
)
from syncagent.pipeline.plan import PersonPlan, PlanContext, plan_person

T0 = datetime(2026, 11, 20, tzinfo=UTC)
MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(MAPPINGS)


def _hot_person(rules: Rules, crm: CrmFacts | None = None) -> tuple[object, dict[str, object]]:
    profile = {"email": "cto@bigco.com", "title": "Chief Technology Officer",
               "employees": 2500, "industry": "Software", "country": "US",
               "annual_revenue": 50_000_000, "company": "BigCo", "last_name": "Ng"}
    acts = [Activity("form_submission", T0 - timedelta(days=d), {"form": "demo"}, f"f{d}")
            for d in range(4)]
    acts += [Activity("page_view", T0 - timedelta(days=1), {"url": "/pricing"}, "p1")]
    person = PersonInput("7", profile, tuple(acts), crm or CrmFacts())
    decision, _ = evaluate(person, rules, T0)
    return decision, profile


def _context(rules: Rules) -> PlanContext:
    return PlanContext(rules.compiled.fields, {})


def test_a_hubspot_only_mql_gets_exactly_one_idempotent_lead_create(rules: Rules) -> None:
    decision, profile = _hot_person(rules)
    assert decision.stage.stage == "MQL", decision.stage.reason
    contact = MirrorRow("hubspot", "contacts", "501", {"email": "cto@bigco.com"}, T0)
    rows = plan_person(PersonPlan(7, decision, profile, [contact], {}, "cto@bigco.com"),
                       _context(rules))
    creates = [r for r in rows if r.system == "salesforce"]
    assert len(creates) == 1
    (lead,) = creates
    assert lead.operation == "upsert" and lead.object == "Lead"
    assert lead.fields["Syncagent_Id__c"] == "sa-7" and lead.fields["Lifecycle_Stage__c"] == "MQL"
    assert lead.fields["LastName"] == "Ng" and lead.fields["Lead_Grade__c"] == decision.grade.grade
    again = plan_person(PersonPlan(7, decision, profile, [contact], {}, "cto@bigco.com"),
                        _context(rules))
    assert [r.idempotency_key for r in again if r.system == "salesforce"] == \
        [lead.idempotency_key], "the same key every time, so the outbox creates it once"


def test_nothing_is_planned_when_the_records_already_hold_the_decision(rules: Rules) -> None:
    decision, profile = _hot_person(rules)
    lead = MirrorRow("salesforce", "Lead", "00Q1", {"Email": "cto@bigco.com"}, T0)
    first = plan_person(PersonPlan(7, decision, profile, [lead], {}, "cto@bigco.com"),
                        _context(rules))
    (update,) = [r for r in first if r.object == "Lead"]
    echoed = MirrorRow("salesforce", "Lead", "00Q1", {**lead.fields, **update.fields}, T0)
    second = plan_person(PersonPlan(7, decision, profile, [echoed], {}, "cto@bigco.com"),
                         _context(rules))
    assert [r for r in second if r.object == "Lead"] == []


def test_an_owner_a_rep_changed_after_our_write_is_not_overwritten(rules: Rules) -> None:
    routed, profile = _hot_person(rules)
    decision = replace(routed, owner=OwnerResult("005AGENT", "user", "pool", "round robin", True))
    lead = MirrorRow("salesforce", "Lead", "00Q1", {"OwnerId": "005REP"}, T0)
    ours = {("salesforce", "Lead", "00Q1"): {"OwnerId": {"value": "005AGENT", "at": "x"}}}
    rows = plan_person(PersonPlan(7, decision, profile, [lead], ours, None), _context(rules))
    assert all("OwnerId" not in r.fields for r in rows)
    never_written = plan_person(PersonPlan(7, decision, profile, [lead], {}, None),
                                _context(rules))
    assert any(r.fields.get("OwnerId") == "005AGENT" for r in never_written), \
        "without a hand edit after our write, the routed owner is written"


def test_a_converted_lead_is_never_updated(rules: Rules) -> None:
    decision, profile = _hot_person(rules)
    lead = MirrorRow("salesforce", "Lead", "00Q1", {"IsConverted": True}, T0)
    rows = plan_person(PersonPlan(7, decision, profile, [lead], {}, None), _context(rules))
    assert [r for r in rows if r.object == "Lead"] == []


def test_a_field_salesforce_refused_is_not_sent_again_but_the_outputs_are(rules: Rules) -> None:
    """Refused everywhere (a field the org lacks) or for this record and value: left out of
    the plan until the mapping or the value changes."""
    from syncagent.pipeline.plan import ANY_VALUE, EVERY_RECORD

    decision, profile = _hot_person(rules)
    lead = MirrorRow("salesforce", "Lead", "00Q1", {"Email": "cto@bigco.com"}, T0)
    refused = {("salesforce", "Lead", EVERY_RECORD): {"industry": ANY_VALUE},
               ("salesforce", "Lead", "00Q1"): {"title": "Chief Technology Officer"}}
    ctx = replace(_context(rules), refused=refused)
    [row] = [r for r in plan_person(PersonPlan(7, decision, profile, [lead], {}, None), ctx)
             if r.system == "salesforce"]
    assert "Industry" not in row.fields and "Title" not in row.fields
    assert row.fields["Lead_Grade__c"] == decision.grade.grade
    changed = dict(profile, title="CEO")     # another value is tried again
    [row] = [r for r in plan_person(PersonPlan(7, decision, changed, [lead], {}, None), ctx)
             if r.system == "salesforce"]
    assert row.fields["Title"] == "CEO"


def test_an_untranslatable_value_is_left_out_and_noted_with_its_record(rules: Rules) -> None:
    from syncagent.pipeline.plan import plan_person_noting

    decision, profile = _hot_person(rules)
    odd = dict(profile, industry="Underwater Basket Weaving")
    lead = MirrorRow("salesforce", "Lead", "00Q2", {"Industry": "Retail"}, T0)
    rows, notes = plan_person_noting(PersonPlan(7, decision, odd, [lead], {}, None),
                                     _context(rules))
    assert all("Industry" not in r.fields for r in rows)
    [note] = notes
    assert (note.record_id, note.miss.remote_field, note.miss.value) == (
        "00Q2", "Industry", "Underwater Basket Weaving")


def test_a_read_back_of_our_own_write_is_an_echo_and_a_person_edit_is_not() -> None:
    from syncagent.pipeline.echo import same_content

    held = {"Lead_Score__c": 63, "Score_Reasons__c": "long text", "Title": "CTO",
            "MQL_Date__c": "2026-12-01T00:35:30.154+0000", "SystemModstamp": "old"}
    read = {"Lead_Score__c": 63.0, "Title": "CTO", "MQL_Date__c": "2026-12-01T00:35:30.000+0000",
            "SystemModstamp": "new", "LastModifiedById": "005agent"}
    assert same_content(held, read)
    assert not same_content(held, {**read, "Title": "CEO"})
    assert not same_content(held, {**read, "Lead_Score__c": 64})


def _tracked(rules: Rules, track: str | None) -> tuple[object, dict[str, object]]:
    """The hot person, put on the track of that name (None: out of nurture)."""
    decision, profile = _hot_person(rules)
    if track is None:
        return replace(decision, track=TrackResult(None, None, None, "left")), profile
    spec = next(t for t in rules.nurture.tracks if t.name == track)
    return replace(decision, track=TrackResult(spec.name, spec.hubspot_list,
                                               spec.nurture_track_value, "matches")), profile


def _list_rows(rows: list[NewOutboxRow]) -> list[tuple[str, str, str | None]]:
    return sorted((r.operation, r.object, r.remote_id) for r in rows
                  if r.operation.startswith("list_"))


def _nurture_context(rules: Rules) -> PlanContext:
    lists = {key: t.hubspot_list for key, t in rules.compiled.nurture.by_key.items()}
    return PlanContext(rules.compiled.fields, {}, track_lists=lists)


@pytest.mark.parametrize(("held", "track", "expected"), [
    ("High Fit Education", "newsletter",
     [("list_add", "list:Newsletter", "501"), ("list_remove", "list:High Fit Education", "501")]),
    ("high fit education", None, [("list_remove", "list:High Fit Education", "501")]),
    ("Newsletter", "newsletter", [("list_add", "list:Newsletter", "501")]),
    (None, "newsletter", [("list_add", "list:Newsletter", "501")]),
])
def test_list_membership_follows_the_track_both_ways(rules: Rules, held: str | None,
                                                    track: str | None,
                                                    expected: list[tuple[str, str, str]]) -> None:
    """A contact joins its track's list (by name) and leaves the list of the track it holds."""
    decision, profile = _tracked(rules, track)
    contact = MirrorRow("hubspot", "contacts", "501",
                        {"email": "cto@bigco.com", "nurture_track": held}, T0)
    rows = plan_person(PersonPlan(7, decision, profile, [contact], {}, "cto@bigco.com"),
                       _nurture_context(rules))
    assert _list_rows(rows) == expected


@pytest.mark.parametrize(("held", "clears"), [("salesqualifiedlead", True), ("other", True),
                                              ("subscriber", False), (None, False)])
def test_a_hubspot_stage_moving_backwards_is_cleared_first(rules: Rules, held: str | None,
                                                           clears: bool) -> None:
    decision, profile = _tracked(rules, "newsletter")
    decision = replace(decision, stage=replace(decision.stage, stage="Lead"))
    contact = MirrorRow("hubspot", "contacts", "501",
                        {"email": "cto@bigco.com", "lifecyclestage": held}, T0)
    rows = plan_person(PersonPlan(7, decision, profile, [contact], {}, "cto@bigco.com"),
                       _nurture_context(rules))
    (update,) = [r for r in rows if r.operation == "update"]
    assert update.fields["lifecyclestage"] == "lead"
    assert ("__clear_first" in update.fields) is clears
    if clears:
        assert update.fields["__clear_first"] == ["lifecyclestage"]


@pytest.mark.parametrize("present", [None, frozenset({"email"}),
                                     frozenset({"salesforceleadid", "salesforcecontactid"})])
def test_salesforce_ids_are_written_only_where_the_portal_has_them(
        rules: Rules, present: frozenset[str] | None) -> None:
    decision, profile = _hot_person(rules)
    contact = MirrorRow("hubspot", "contacts", "501", {"email": "cto@bigco.com"}, T0)
    lead = MirrorRow("salesforce", "Lead", "00Q1", {"Email": "cto@bigco.com"}, T0)
    ctx = PlanContext(rules.compiled.fields, {}, known_fields={("hubspot", "contacts"): present})
    rows = plan_person(PersonPlan(7, decision, profile, [contact, lead], {}, "cto@bigco.com"),
                       ctx)
    (update,) = [r for r in rows if r.system == "hubspot" and r.operation == "update"]
    written = update.fields.get("salesforceleadid")
    assert written == ("00Q1" if present and "salesforceleadid" in present else None)


def test_the_reasons_text_given_with_the_plan_is_the_one_written(rules: Rules,
                                                                 monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    """The cycle builds a decision's reasons text once (for the stored decision) and hands
    it to planning, which does not build it again."""
    decision, profile = _hot_person(rules)
    built = decision.reasons_text()
    contact = MirrorRow("hubspot", "contacts", "501", {"email": "cto@bigco.com"}, T0)
    monkeypatch.setattr(type(decision), "reasons_text", lambda *_: pytest.fail("built again"))
    rows = plan_person(PersonPlan(7, decision, profile, [contact], {}, "cto@bigco.com",
                                  reasons_text=built), _context(rules))
    [update] = [r for r in rows if r.system == "hubspot"]
    assert update.fields["score_reasons"] == built
