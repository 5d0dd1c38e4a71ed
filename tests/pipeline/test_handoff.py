"""The handoff step: timers fired once with one task each, cancelled when the lead moved on,
tasks placed per the systems' TaskSpecs (or recorded as not given, never a crash), stage
history with its causes, reps' feedback, and a re-run after a crash that adds nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.registry import registered
from state.handoff import CANCELLED, FIRED, PENDING, TimerRow
from state.store import MirrorRow, StateStore
from syncagent.engine import Activity, CrmFacts, PersonInput, Rules, evaluate, load_rules
from syncagent.engine.model import (
    Alert,
    Decision,
    EngineState,
    OwnerResult,
    SlaTimer,
    StageResult,
    User,
    UserDirectory,
)
from syncagent.pipeline.decide import Evaluated, World
from syncagent.pipeline.handoff import (
    KEY_CHARS,
    Stored,
    derive,
    handoff_for_chunk,
    task_context,
    task_key,
    timer_key,
)
from syncagent.pipeline.plan import PersonPlan
from syncagent.pipeline.tasks import TaskContext

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
T0 = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)          # hand-over: a Friday, 14:00 New York
NOW = T0 + timedelta(days=3)
LEAD = MirrorRow("salesforce", "Lead", "00Q1", {"Email": "cto@bigco.com"}, T0)
CONTACT = MirrorRow("hubspot", "contacts", "501", {"email": "cto@bigco.com"}, T0)
USERS = [User("005A", "ava@x.com", "Ava Stone", manager_id="005M"),
         User("005B", "ben@x.com", "Ben Ruiz"), User("005M", "mia@x.com", "Mia Park"),
         User("005Z", "zed@x.com", "Zed Old", active=False)]


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(MAPPINGS)


@pytest.fixture(scope="module")
def base(rules: Rules) -> Decision:
    profile = {"email": "cto@bigco.com", "first_name": "Kim", "last_name": "Ng",
               "company": "BigCo", "title": "Chief Technology Officer", "employees": 2500,
               "industry": "Software", "country": "US", "lead_source": "Webinar"}
    acts = tuple(Activity("form_submission", T0 - timedelta(days=d), {"form": "demo"}, f"f{d}")
                 for d in range(4))
    decision, _ = evaluate(PersonInput("7", profile, acts, CrmFacts()), rules, T0)
    state = EngineState("MQL", T0, None, "005A", T0, None, T0)
    owner = OwnerResult("005A", "user", "pool", "Round robin in the pool", False)
    return replace(decision, stage=StageResult("MQL", "score ≥ 50", T0, False), owner=owner,
                   state=state, alerts=(), sla=())


def _ctx() -> TaskContext:
    world = World(UserDirectory.of(USERS), {}, {"hubspot": {"005A": "9001", "005B": "9002"}})
    return TaskContext(registered(), world, lambda s, o, i: f"https://org.example/{i}")


def _plan(decision: Decision, *records: MirrorRow) -> PersonPlan:
    profile = {"first_name": "Kim", "last_name": "Ng", "company": "BigCo",
               "lead_source": "Webinar"}
    return PersonPlan(7, decision, profile, list(records or [LEAD]), {}, "cto@bigco.com")


def _timer(kind: str, hours: float, owner: str | None = "005A") -> SlaTimer:
    return SlaTimer(kind, T0 + timedelta(hours=hours), owner, f"{kind} message", T0, "005A")


def _stored(kind: str, hours: float, status: str = PENDING) -> TimerRow:
    return TimerRow(timer_key(7, kind, T0), 7, kind, T0, T0 + timedelta(hours=hours), "005A",
                    status, None, {"message": f"{kind} message", "lead_owner": "005A"})


def _previous(stage: str = "MQL", owner: str = "005A",
              evaluated_at: datetime = T0) -> dict[int, dict[str, Any]]:
    """The stored decision: by default, last evaluated when the timers started."""
    return {7: {"stage": stage, "owner": owner, "evaluated_at": evaluated_at}}


def test_a_step_due_after_the_lead_was_accepted_is_cancelled_and_gives_no_task(
    base: Decision,
) -> None:
    accepted = replace(base, stage=StageResult("SAL", "a rep accepted it", T0, True), sla=())
    stored = Stored(_previous(), {7: [_stored("remind", 4), _stored("escalate", 24)]})
    out = derive([_plan(accepted)], [], stored, _ctx(), NOW)
    assert sorted(out.rows.cancelled) == sorted(t.key for t in stored.timers[7])
    assert out.outbox == [] and out.rows.tasks == [] and out.rows.timers == []
    (change,) = out.rows.history
    assert (change.from_stage, change.to_stage, change.cause, change.actor) == \
        ("MQL", "SAL", "rep", "005A")


def test_a_person_whose_records_were_deleted_has_its_pending_steps_cancelled_only(
    base: Decision,
) -> None:
    fired = _stored("remind", 4, FIRED)
    stored = Stored({}, {7: [fired, _stored("escalate", 24)]})
    out = derive([], [7], stored, _ctx(), NOW)
    assert out.rows.cancelled == [timer_key(7, "escalate", T0)]
    assert out.outbox == [] and out.rows.timers == []


def test_an_owner_who_no_longer_exists_gets_no_task_but_the_step_fires_once_and_says_why(
    base: Decision,
) -> None:
    for gone in ("005Q", "005Z", None):   # unknown user, inactive user, a queue owner
        decision = replace(base, sla=(_timer("remind", 4, owner=gone),))
        out = derive([_plan(decision)], [], Stored(_previous()), _ctx(), NOW)
        (step,) = out.rows.timers
        assert (step.status, step.fired_at) == (FIRED, NOW), "never retried forever"
        (task,) = out.rows.tasks
        assert task.system is None and task.detail["not_given"], task
        assert out.outbox == []
        (flag,) = out.flags
        assert flag.kind == "task_not_given" and flag.detail["person_id"] == 7


def test_remote_text_of_any_length_or_shape_gives_a_one_line_subject_and_a_bounded_body(
    base: Decision,
) -> None:
    decision = replace(base, sla=(_timer("remind", 4),),
                       alerts=(Alert("x" * 300, "005A", "m" * 9_000, "7:x:e", NOW, "005A",
                                     "page_view", "https://x.example/" + "p" * 5_000),))
    plan = replace(_plan(decision), profile={"company": "Big\nCo\r\n" + "c" * 400})
    out = derive([plan], [], Stored(_previous()), _ctx(), NOW)
    assert len(out.outbox) == 2
    for row in out.outbox:
        subject, body = row.fields["Subject"], row.fields["Description"]
        assert len(subject) <= 255 and "\n" not in subject and "\r" not in subject
        assert len(body) <= 4_000 and body
    assert all(len(t.name) <= 80 for t in out.rows.tasks)


def test_a_due_step_fires_with_one_salesforce_task_on_the_lead_upserted_by_its_key(
    base: Decision,
) -> None:
    decision = replace(base, sla=(_timer("remind", 4), _timer("escalate", 24, "005M"),
                                  _timer("reassign", 48 + 96)))
    out = derive([_plan(decision, LEAD, CONTACT)], [], Stored(_previous()), _ctx(), NOW)
    status = {t.kind: t.status for t in out.rows.timers}
    assert status == {"remind": FIRED, "escalate": FIRED, "reassign": PENDING}
    rows = {r.fields["Idempotency_Key__c"]: r for r in out.outbox}
    remind, escalate = rows[timer_key(7, "remind", T0)], rows[timer_key(7, "escalate", T0)]
    assert (remind.system, remind.object, remind.operation) == ("salesforce", "Task", "create")
    assert remind.idempotency_key == f"salesforce:task:{timer_key(7, 'remind', T0)}"
    assert remind.fields["__key"] == remind.fields["Idempotency_Key__c"]
    assert (remind.fields["WhoId"], remind.fields["OwnerId"]) == ("00Q1", "005A")
    assert (escalate.fields["OwnerId"], escalate.fields["Priority"]) == ("005M", "High")
    assert remind.fields["Priority"] == "Normal" and remind.fields["Status"] == "Not Started"
    assert remind.fields["ActivityDate"] == NOW.date().isoformat()
    assert "Kim Ng (BigCo)" in remind.fields["Subject"]
    assert "Ava Stone" in escalate.fields["Subject"]
    assert "https://org.example/00Q1" in remind.fields["Description"]
    assert "remind message" in remind.fields["Description"]


class _Org:
    """A connector as far as tasks need one: its profile, and links to its records."""

    profile = registered()["salesforce"]

    def record_url(self, object: str, record_id: str) -> str | None:
        return f"https://org.example/{object}/{record_id}"


def test_due_today_is_the_reps_day_and_the_record_link_comes_from_the_connector(
    base: Decision,
) -> None:
    late_friday = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)   # Friday 22:30 in New York
    ctx = task_context({"salesforce": _Org()}, _ctx().world,  # type: ignore[dict-item]
                       ZoneInfo("America/New_York"))
    decision = replace(base, sla=(_timer("remind", 4),))
    out = derive([_plan(decision, LEAD, CONTACT)], [], Stored(_previous()), ctx, late_friday)
    (row,) = out.outbox   # only the agent's systems take tasks
    assert row.fields["ActivityDate"] == "2026-11-27"
    assert row.fields["Description"].endswith("Record: https://org.example/Lead/00Q1")


def test_a_converted_lead_s_task_goes_on_its_contact(base: Decision) -> None:
    converted = MirrorRow("salesforce", "Lead", "00Q1", {"IsConverted": True}, T0)
    contact = MirrorRow("salesforce", "Contact", "003C", {}, T0)
    decision = replace(base, sla=(_timer("remind", 4),))
    out = derive([_plan(decision, converted, contact)], [], Stored(_previous()), _ctx(), NOW)
    (row,) = out.outbox
    assert row.fields["WhoId"] == "003C"


def test_a_hubspot_only_person_s_task_is_a_hubspot_task_on_the_contact_for_its_owner(
    base: Decision,
) -> None:
    decision = replace(base, sla=(_timer("remind", 4), _timer("escalate", 24, "005M")))
    out = derive([_plan(decision, CONTACT)], [], Stored(_previous()), _ctx(), NOW)
    (row,) = out.outbox   # the manager has no HubSpot owner: not given, and said so
    assert (row.system, row.object) == ("hubspot", "tasks")
    assert row.fields["hubspot_owner_id"] == "9001"
    assert row.fields["__associate"] == {"contacts": "501"}
    assert row.fields["hs_task_priority"] == "MEDIUM"
    assert row.fields["hs_timestamp"].endswith("Z")
    assert "Idempotency_Key__c" not in row.fields and row.fields["__key"]
    (not_given,) = [t for t in out.rows.tasks if t.system is None]
    assert not_given.kind == "escalate" and "owner" in not_given.detail["not_given"]


def test_the_reassign_the_engine_carried_out_fires_to_the_new_owner_with_its_reason(
    base: Decision,
) -> None:
    why = "Reassigned from Ava Stone: not accepted within 48 business hours (SLA)"
    moved = OwnerResult("005B", "user", "pool", why, True)
    fresh = SlaTimer("remind", NOW + timedelta(hours=4), "005B", "remind", NOW, "005B")
    decision = replace(base, owner=moved, sla=(fresh,))
    stored = Stored(_previous(), {7: [_stored("remind", 4, FIRED), _stored("reassign", 48)]})
    out = derive([_plan(decision)], [], stored, _ctx(), NOW)
    fired = [t for t in out.rows.timers if t.status == FIRED]
    assert [t.kind for t in fired] == ["reassign"]
    assert [t.key for t in out.rows.timers if t.status == PENDING] == \
        [timer_key(7, "remind", NOW)]
    (row,) = out.outbox
    assert row.fields["OwnerId"] == "005B" and why in row.fields["Description"]
    (change,) = out.rows.history
    assert (change.cause, change.actor, change.from_stage, change.to_stage) == \
        ("sla", "agent", "MQL", "MQL")
    assert change.detail == {"reason": why, "from_owner": "005A", "to_owner": "005B"}


def test_a_rep_s_recycle_is_kept_as_history_and_feedback_with_source_and_owner(
    base: Decision,
) -> None:
    state = replace(base.state, seen_lead_status="Disqualified",
                    seen_disqualified_reason="Timing")
    recycled = replace(base, state=state, owner=replace(base.owner, owner_id="00G1"),
                       stage=StageResult("Recycled", "recycle", None, True, recycled=True))
    stored = Stored(_previous(), campaigns={7: "701Spring"})
    out = derive([_plan(recycled)], [], stored, _ctx(), NOW)
    (feedback,) = out.rows.feedback
    assert (feedback.outcome, feedback.reason, feedback.lead_status, feedback.lead_source,
            feedback.campaign, feedback.owner) == \
        ("recycled", "Timing", "Disqualified", "Webinar", "701Spring", "005A")
    (change,) = out.rows.history
    assert (change.cause, change.actor) == ("recycle", "005A")


def test_alert_tasks_once_per_key_a_long_key_bounded_and_grade_a_high(base: Decision) -> None:
    long_name = "a" * 120
    alerts = (Alert("pricing", "005A", "msg", "7:pricing:evt1", NOW, "005A", "page_view",
                    "/pricing", True),
              Alert(long_name, "005A", "msg", f"7:{long_name}:evt2", NOW, "005B"),
              Alert("given", "005A", "msg", "7:given:evt3", NOW, "005A"))
    stored = Stored(_previous(), given=frozenset({"7:given:evt3"}))
    out = derive([_plan(replace(base, alerts=alerts))], [], stored, _ctx(), NOW)
    rows = {r.fields["OwnerId"]: r for r in out.outbox}
    assert len(out.outbox) == 2 and set(rows) == {"005A", "005B"}
    assert rows["005A"].fields["Priority"] == "High"
    assert "/pricing" in rows["005A"].fields["Subject"]
    bounded = rows["005B"].fields["Idempotency_Key__c"]
    assert len(bounded) == KEY_CHARS and bounded == task_key(f"7:{long_name}:evt2")
    assert task_key("7:pricing:evt1") == "7:pricing:evt1"


def test_a_cycle_re_run_after_a_crash_fires_nothing_twice(base: Decision, tmp_path: Path
                                                          ) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    (pid,) = store.persons.create(["cto@bigco.com"], now=T0)
    decision = replace(base, person_id=str(pid),
                       sla=(_timer("remind", 4), _timer("escalate", 24, "005M")),
                       alerts=(Alert("pricing", "005A", "m", f"{pid}:pricing:e1", NOW, "005A"),))
    plan = replace(_plan(decision), person_id=pid)
    looked = {pid: _previous()[7]}   # last evaluated when the timers started
    chunk = Evaluated([plan], [], {pid: None}, None, previous=looked)  # type: ignore[arg-type]
    crashed = handoff_for_chunk(store, chunk, _ctx(), NOW)   # derived, never committed
    again = handoff_for_chunk(store, chunk, _ctx(), NOW + timedelta(minutes=5))
    assert [r.idempotency_key for r in crashed.outbox] == \
        [r.idempotency_key for r in again.outbox] and len(again.outbox) == 3
    store.commit_evaluation(again.outbox, [], {pid: None}, {}, now=NOW, handoff=again.rows)
    settle = handoff_for_chunk(store, chunk, _ctx(), NOW + timedelta(minutes=5))
    assert settle.outbox == [] and settle.rows.tasks == []
    assert {t.status for t in store.handoff.timers_of([pid])[pid]} == {FIRED}
    assert store.outbox.counts() == {"pending": 3}
    store.dispose()


def test_a_reassign_to_the_fallback_queue_fires_without_a_task_and_cancels_the_rest(
    base: Decision,
) -> None:
    queue = OwnerResult("00G1", "queue", "pool", "nobody else is eligible: the queue", True)
    stored = Stored(_previous(), {7: [_stored("remind", 4, FIRED), _stored("escalate", 240),
                                      _stored("reassign", 48)]})
    out = derive([_plan(replace(base, owner=queue, sla=()))], [], stored, _ctx(), NOW)
    assert out.rows.cancelled == [timer_key(7, "escalate", T0)]
    assert [(t.kind, t.status) for t in out.rows.timers] == [("reassign", FIRED)]
    (task,) = out.rows.tasks
    assert task.kind == "reassign" and task.system is None and out.outbox == []
    assert [h.cause for h in out.rows.history] == ["sla"]


def test_an_owner_change_before_the_reassign_is_due_cancels_the_old_steps(
    base: Decision,
) -> None:
    by_hand = OwnerResult("005B", "user", None, "a rep took it", True)
    stored = Stored(_previous(), {7: [_stored("escalate", 240), _stored("reassign", 480)]})
    out = derive([_plan(replace(base, owner=by_hand, sla=()))], [], stored, _ctx(), NOW)
    assert sorted(out.rows.cancelled) == sorted(t.key for t in stored.timers[7])
    assert out.rows.timers == [] and out.rows.tasks == [] and out.rows.history == []


def test_steps_overdue_before_the_agent_first_looked_are_skipped_not_fired(
    base: Decision,
) -> None:
    """A first sync (no stored decision) or the first cycle after an upgrade (stored decision
    evaluated after the step's due time, no stored step): reps get no burst of old tasks;
    the steps are kept as skipped. A step due since the last look fires; a reassign the
    engine carried out fires."""
    steps = (_timer("remind", 4), _timer("escalate", 24, "005M"), _timer("qualify", 60))
    decision = replace(base, sla=steps)
    first = derive([_plan(decision)], [], Stored({}), _ctx(), NOW)
    assert [(t.kind, t.status, t.detail.get("skipped") is not None)
            for t in first.rows.timers] == [("remind", CANCELLED, True),
                                           ("escalate", CANCELLED, True),
                                           ("qualify", CANCELLED, True)]
    assert first.outbox == [] and first.rows.tasks == []
    looked = _previous(evaluated_at=T0 + timedelta(hours=30))   # after remind and escalate
    upgraded = derive([_plan(decision)], [], Stored(looked), _ctx(), NOW)
    assert [(t.kind, t.status) for t in upgraded.rows.timers] == \
        [("remind", CANCELLED), ("escalate", CANCELLED), ("qualify", FIRED)]
    assert len(upgraded.outbox) == 1
    reassigned = replace(decision, sla=(_timer("reassign", 48),))
    out = derive([_plan(reassigned)], [], Stored({}), _ctx(), NOW)
    assert [(t.kind, t.status) for t in out.rows.timers] == [("reassign", FIRED)]


def test_a_step_stored_as_it_is_emitted_is_not_written_again_any_change_is(
    base: Decision,
) -> None:
    """A re-evaluation emits the pending steps it stored before: those the state DB holds
    as they are (the same instant in any zone) are left out of the write; a changed due
    time, recipient or message, or a step cancelled since, is written as before."""
    steps = (_timer("escalate", 100), _timer("qualify", 200))
    decision = replace(base, sla=steps)
    berlin = ZoneInfo("Europe/Berlin")
    held = [replace(_stored("escalate", 100), due_at=(T0 + timedelta(hours=100)).astimezone(
        berlin), detail={"lead_owner": "005A", "message": "escalate message"}),
            _stored("qualify", 200)]
    out = derive([_plan(decision)], [], Stored(_previous(), {7: held}), _ctx(), NOW)
    assert out.rows.timers == [] and out.rows.cancelled == [] and out.outbox == []
    for changed in (replace(held[1], due_at=held[1].due_at + timedelta(minutes=1)),
                    replace(held[1], recipient="005B"), replace(held[1], status=CANCELLED),
                    replace(held[1], detail={**held[1].detail, "message": "older words"})):
        out = derive([_plan(decision)], [], Stored(_previous(), {7: [held[0], changed]}),
                     _ctx(), NOW)
        assert [(t.key, t.due_at, t.recipient, t.status, t.detail) for t in out.rows.timers] \
            == [(changed.key, T0 + timedelta(hours=200), "005A", PENDING,
                 {"message": "qualify message", "lead_owner": "005A"})]
    first = derive([_plan(decision)], [], Stored({}), _ctx(), NOW + timedelta(hours=300))
    skipped = first.rows.timers
    assert [t.status for t in skipped] == [CANCELLED, CANCELLED]
    again = derive([_plan(decision)], [], Stored({}, {7: skipped}), _ctx(),
                   NOW + timedelta(hours=300))
    assert again.rows.timers == []
