"""The plan helper's shortcuts against the slow paths they replace, on the worst inputs:

- `pieces.for_plans` reads e-mails only for the persons `plan.creating` finds a system to
  create a record in: for every other person, what the e-mail sets say changes nothing;
- `engine.handoff.hand_over` runs the routing rules for whether the SLA may reassign a lead
  a person assigned only for an MQL, the one stage where the answer is read;
- `engine.lifecycle._mql_reason` makes its texts only for the reason it returns;
- `engine.sla` keeps the qualify steps' messages by moment, offset, window and note;
- a chunk's persons share one scratch `Handoff` (`handoff.taken`), and a `Piece` pickles as
  a tuple with () for what is empty: merged, the pieces give what `derive` gives.
"""

from __future__ import annotations

import itertools
import pickle
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from state.flags import Flag
from state.handoff import FeedbackRow, HandoffRows, StageChange, TaskRecord, TimerRow
from state.store import MirrorRow, NewOutboxRow
from syncagent.engine import (
    Activity,
    CrmFacts,
    PersonInput,
    Rules,
    TrackResult,
    evaluate,
    lifecycle,
    load_rules,
)
from syncagent.engine import handoff as engine_handoff
from syncagent.engine.lifecycle import CompiledLifecycle
from syncagent.engine.model import (
    STAGE_RANK,
    Decision,
    EngineState,
    OwnerResult,
    StageResult,
    User,
    UserDirectory,
)
from syncagent.engine.operators import GRADES
from syncagent.engine.sla import reassign_due, sla_timers, stand_in
from syncagent.pipeline.handoff import NO_HANDOFF, Handoff, join, taken
from syncagent.pipeline.match import AMBIGUOUS
from syncagent.pipeline.pieces import Piece, for_plans, merge
from syncagent.pipeline.plan import PersonPlan, PlanContext, creating, plan_person
from syncagent.pipeline.quarantine import Poison

T0 = datetime(2026, 11, 20, tzinfo=UTC)
MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
EMAIL = "cto@bigco.com"


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(MAPPINGS)


def _decisions(rules: Rules) -> list[Decision]:
    """An MQL on a track, an MQL out of nurture, a Subscriber on a track, one on none, a
    disqualified one: every combination `creating`'s two wants can take."""
    profile = {"email": EMAIL, "title": "Chief Technology Officer", "employees": 2500,
               "industry": "Software", "country": "US", "company": "BigCo", "last_name": "Ng"}
    acts = tuple(Activity("form_submission", T0 - timedelta(days=d), {"form": "demo"}, f"f{d}")
                 for d in range(4))
    hot, _ = evaluate(PersonInput("7", profile, acts, CrmFacts()), rules, T0)
    assert hot.stage.stage == "MQL"
    spec = rules.nurture.tracks[0]
    on = TrackResult(spec.name, spec.hubspot_list, spec.nurture_track_value, "matches")
    off = TrackResult(None, None, None, "left")
    low = replace(hot.stage, stage="Subscriber")
    return [replace(hot, track=on), replace(hot, track=off), replace(hot, stage=low, track=on),
            replace(hot, stage=low, track=off),
            replace(hot, stage=StageResult("Disqualified", "a rep", None, True,
                                           disqualified=True), track=off)]


def _record_sets() -> list[list[MirrorRow]]:
    lead = MirrorRow("salesforce", "Lead", "00Q1", {"Email": EMAIL}, T0)
    contact = MirrorRow("salesforce", "Contact", "0031", {"Email": EMAIL}, T0)
    hub = MirrorRow("hubspot", "contacts", "501", {"email": EMAIL}, T0)
    gone = MirrorRow("hubspot", "contacts", "502", {"email": EMAIL}, T0, deleted=True)
    return [[], [lead], [contact], [hub], [gone], [lead, hub], [lead, gone], [contact, hub]]


def _all_known(rules: Rules, nurture: bool) -> PlanContext:
    """Every system holds the e-mail already, and it is ambiguous: the slow path's sets,
    had it read them for this person."""
    base = PlanContext(rules.compiled.fields, {}, create_for_nurture=nurture)
    return replace(base, ambiguous_emails=frozenset({EMAIL}),
                   known_emails={system: frozenset({EMAIL}) for system in base.profiles})


def test_a_person_no_system_would_create_for_plans_the_same_whatever_is_known_of_the_email(
        rules: Rules) -> None:
    checked = created = 0
    for decision, records, email, nurture in itertools.product(
            _decisions(rules), _record_sets(), [EMAIL, None, ""], [True, False]):
        plan = PersonPlan(7, decision, {"email": email, "last_name": "Ng"}, records, {}, email)
        unknown = PlanContext(rules.compiled.fields, {}, create_for_nurture=nurture)
        rows = plan_person(plan, unknown)
        if creating(plan, unknown):
            created += any(r.operation == "upsert" for r in rows)
            assert not [r for r in plan_person(plan, _all_known(rules, nurture))
                        if r.operation == "upsert"], "a known or ambiguous e-mail: no create"
            continue
        checked += 1
        assert not [r for r in rows if r.operation == "upsert"]
        assert plan_person(plan, _all_known(rules, nurture)) == rows
    assert checked > 20 and created > 5, "both kinds of person were met"


class _Recording:
    """A store whose e-mail reads record what they were asked for (nothing is held)."""

    def __init__(self) -> None:
        self.asked: list[set[str]] = []
        self.mirror, self.flags = self, self

    def email_holders(self, emails: set[str]) -> list[tuple[str, str, str, str]]:
        self.asked.append(set(emails))
        return [("hubspot", "contacts", "9", email) for email in emails]

    def open_keys(self, keys: Any) -> set[str]:
        found = set(keys)
        self.asked.append(found)
        return found


def test_for_plans_reads_the_emails_of_the_persons_a_system_would_create_for_only(
        rules: Rules) -> None:
    hot, _moved, _low_on, low_off, _dq = _decisions(rules)
    lead = MirrorRow("salesforce", "Lead", "00Q1", {"Email": "a@x.com"}, T0)
    plans = [PersonPlan(1, hot, {}, [lead], {}, "a@x.com"),            # HubSpot creates
             PersonPlan(2, low_off, {}, [lead], {}, "b@x.com"),        # nothing wanted
             PersonPlan(3, hot, {}, [], {}, None)]                      # no e-mail
    store = _Recording()
    context = PlanContext(rules.compiled.fields, {})
    found = for_plans(store, context, plans)   # type: ignore[arg-type]
    assert store.asked == [{"a@x.com"}, {AMBIGUOUS + "a@x.com"}]
    assert found.known_emails == {"hubspot": frozenset({"a@x.com"})}
    assert found.ambiguous_emails == frozenset({"a@x.com"})
    assert not [r for r in plan_person(plans[0], found) if r.operation == "upsert"]


def _full_handoff(n: int) -> Handoff:
    rows = HandoffRows(
        [StageChange(f"h{n}", n, T0, None, "MQL", "rule", "x", {"n": n})],
        [TimerRow(f"t{n}", n, "remind", T0, T0, "u", detail={"message": "\x00"})],
        [f"c{n}"], [TaskRecord(f"k{n}", n, "alert", "a", None, None, T0, {})],
        [FeedbackRow(f"f{n}", n, T0, "recycled", None, None, None, None, None, {})])
    return Handoff(rows, [NewOutboxRow("salesforce", "Task", "create", {"n": n}, f"o{n}")],
                   [Flag("task_not_given", f"task:{n}", {})])


def _lists(out: Handoff) -> list[list[Any]]:
    rows = out.rows
    return [rows.history, rows.timers, rows.cancelled, rows.tasks, rows.feedback, out.outbox,
            out.flags]


def test_taken_hands_over_what_a_scratch_handoff_holds_and_leaves_it_empty() -> None:
    scratch = Handoff()
    assert taken(scratch) is NO_HANDOFF
    whole, parts = Handoff(), []
    for n in range(4):
        full = _full_handoff(n)
        for i, (mine, wholes, theirs) in enumerate(zip(_lists(scratch), _lists(whole),
                                                       _lists(full), strict=True)):
            # person 0 adds nothing, person 2 to every other list, the others to each
            some = theirs if n in (1, 3) or (n == 2 and i % 2) else []
            mine += some
            wholes += some
        parts.append(taken(scratch))
        assert not any(_lists(scratch)), "the scratch is empty for the next person"
    assert parts[0] is NO_HANDOFF
    joined = Handoff()
    for part in pickle.loads(pickle.dumps(parts, protocol=pickle.HIGHEST_PROTOCOL)):
        join(part, joined)
    assert joined == whole
    assert parts[1][0] is not parts[3][0], "each person's lists are their own"


def test_a_piece_pickles_to_an_equal_piece_and_merges_as_before() -> None:
    flag = Flag("untranslatable_value", "k", {"value": float("nan")})
    poison = Poison("salesforce", "Lead", "00Q1", "Email", "\x00")
    pieces = {
        1: Piece(T0, {"person_id": 1}, [NewOutboxRow("hubspot", "contacts", "update", {},
                                                     "u1", "1", 1)], [flag], [poison],
                 taken(_full_handoff(1))),
        2: Piece(None, handoff=taken(_full_handoff(2)), gone=True),
        3: Piece(T0 + timedelta(days=1), poison=[poison]),
        4: Piece(T0, {"person_id": 4}),
    }
    back = pickle.loads(pickle.dumps(pieces, protocol=pickle.HIGHEST_PROTOCOL))
    assert repr(back) == repr(pieces)   # (a NaN is equal to nothing, not even itself)
    order = [2, 4, 1, 3]
    merged, again = merge(order, pieces), merge(order, back)
    assert repr(merged) == repr(again)
    expected = Handoff()
    for n in (1, 2):   # the gone person's rows after everyone else's
        join(taken(_full_handoff(n)), expected)
    assert merged.handoff == expected
    assert merged.decisions == [{"person_id": 4}, {"person_id": 1}]
    assert merged.flags == [flag, *expected.flags] and merged.poison == [poison, poison]
    assert merged.planned == 1 and len(merged.rows) == 1 + len(expected.outbox)


@pytest.mark.parametrize("stage", [s for s in STAGE_RANK if s != "MQL"] + ["", "Unknown"])
def test_below_or_past_mql_may_reassign_changes_nothing_so_hand_over_skips_its_rules(
        rules: Rules, stage: str) -> None:
    """`hand_over` runs the routing rules (`sla_may_reassign`) for an MQL only: for any other
    stage, `reassign_due` and `sla_timers` give the same whatever it would have said."""
    rt = rules.compiled.routing
    users = UserDirectory.of([User("005A", "a@x.com", "Ann", manager_id="005M"),
                              User("005M", "m@x.com", "Max"),
                              User("005O", "o@x.com", "Out", out_of_office=True)])
    long_ago = T0 - timedelta(days=30)
    for owner_id, kind, previous_stage in itertools.product(
            ["005A", "005O", "00G1", None], ["user", "queue", "none"], ["MQL", "SAL", None]):
        previous = EngineState(previous_stage, long_ago, None, owner_id, long_ago) \
            if previous_stage else None
        owner = OwnerResult(owner_id, kind, "pool-rule", "why", False)
        for start, sal_at in [(long_ago, long_ago), (None, None), (T0, None)]:
            due = [reassign_due(previous, stage, long_ago, owner_id, may, rt, users, T0)
                   for may in (True, False)]
            timers = [sla_timers(stage, start, sal_at, owner, may, rt, users, "pool-rule")
                      for may in (True, False)]
            assert due[0] == due[1] and timers[0] == timers[1]
    # and at MQL it does matter (the test would pass vacuously otherwise)
    previous = EngineState("MQL", long_ago, None, "005A", long_ago)
    assert reassign_due(previous, "MQL", long_ago, "005A", True, rt, users, T0) is not None
    assert reassign_due(previous, "MQL", long_ago, "005A", False, rt, users, T0) is None


def test_hand_over_runs_no_routing_rule_below_mql(rules: Rules,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def counted(rt: Any, facts: Any) -> bool:
        asked.append(str(facts.get("stage")))
        return True

    monkeypatch.setattr(engine_handoff, "sla_may_reassign", counted)
    mine = CrmFacts(owner_id="005A", owner_set_by_human=True)
    quiet = PersonInput("8", {"email": "x@y.com"}, (), mine)
    decision, _ = evaluate(quiet, rules, T0)
    assert decision.stage.stage != "MQL" and asked == []
    hot = PersonInput("9", {"email": EMAIL, "title": "Chief Technology Officer",
                            "employees": 2500, "industry": "Software", "country": "US"},
                      tuple(Activity("form_submission", T0 - timedelta(days=d), {"form": "d"},
                                     f"f{d}") for d in range(4)), mine)
    decision, _ = evaluate(hot, rules, T0)
    assert decision.stage.stage == "MQL" and asked == ["MQL"]


def test_what_for_plans_found_is_used_for_that_very_plan_only(rules: Rules) -> None:
    hot, _moved, _low_on, low_off, _dq = _decisions(rules)
    lead = MirrorRow("salesforce", "Lead", "00Q1", {"Email": "a@x.com"}, T0)
    plan = PersonPlan(1, hot, {}, [lead], {}, "a@x.com")
    found = for_plans(_Recording(), PlanContext(rules.compiled.fields, {}),  # type: ignore[arg-type]
                      [plan])
    assert [system for system, _p, _c in creating(plan, found)] == ["hubspot"]
    assert found.creating[1][0] is plan
    other = replace(plan, decision=low_off)   # the same person, planned again otherwise
    assert creating(other, found) == [] == creating(other, PlanContext(rules.compiled.fields, {}))
    assert creating(replace(plan), found) == creating(plan, PlanContext(rules.compiled.fields, {}))


def _mql_reason_as_before(grade_rank: int, score: int, lc: CompiledLifecycle) -> str | None:
    """engine/lifecycle._mql_reason before it made its texts only when returned."""
    grade_text = f"grade {GRADES[grade_rank]} ≥ {GRADES[lc.mql_min_rank]}"
    score_text = f"score {score} ≥ {lc.mql_min_score:g}"
    grade_ok, score_ok = grade_rank >= lc.mql_min_rank, score >= lc.mql_min_score
    if lc.mql_policy == "score":
        return score_text if score_ok else None
    if lc.mql_policy == "grade":
        return grade_text if grade_ok else None
    if lc.mql_policy == "grade_or_score":
        return grade_text if grade_ok else (score_text if score_ok else None)
    return f"{grade_text} and {score_text}" if grade_ok and score_ok else None


def test_the_mql_reason_is_the_one_it_was(rules: Rules) -> None:
    base = rules.compiled.lifecycle
    for policy, min_score in itertools.product(
            ["score", "grade", "grade_or_score", "grade_and_score"], [0.0, 49.5, 50.0, 1e9]):
        lc = replace(base, mql_policy=policy, mql_min_score=min_score)
        for grade_rank, score in itertools.product(range(len(GRADES)), [-3, 0, 49, 50, 51]):
            assert lifecycle._mql_reason(grade_rank, score, lc) == \
                _mql_reason_as_before(grade_rank, score, lc)


def test_the_qualify_steps_read_as_they_did_whatever_the_offset(rules: Rules) -> None:
    """`sla._qualify_messages` is kept by moment and offset: the same instant at another
    offset reads in its own wall-clock time, as the messages made each time did."""
    rt = rules.compiled.routing
    users = UserDirectory.of([User("005A", "a@x.com", "Ann"),
                              User("005O", "o@x.com", "Out", out_of_office=True)])
    plus_two = timezone(timedelta(hours=2))
    for sal_at, owner, days in itertools.product(
            [T0, T0.astimezone(plus_two), T0.astimezone(ZoneInfo("Europe/Berlin")),
             T0 + timedelta(minutes=1)], ["005A", "005O"], [14, 14.0, 2.5]):
        lc = replace(rt, sla=replace(rt.sla, qualify_days=days))
        got = sla_timers("SAL", None, sal_at, OwnerResult(owner, "user", None, "", False), True,
                         lc, users, None)
        to, note = stand_in(owner, lc, users, None)
        accepted = f"accepted at {format(sal_at, '%Y-%m-%d %H:%M UTC')}"
        assert [(t.kind, t.due_at, t.owner_id, t.message, t.started_at, t.lead_owner_id)
                for t in got] == [
            ("qualify", sal_at + timedelta(days=days), to,
             f"Please qualify, recycle or disqualify this lead: {accepted}, and the "
             f"window is {days:g} days.{note}", sal_at, owner),
            ("qualify_late", sal_at + timedelta(days=days * 1.5), to,
             f"Overdue: this lead was {accepted} and is still not qualified, recycled or "
             f"disqualified after {days * 1.5:g} days.{note}", sal_at, owner)]
        assert [t.due_at.utcoffset() for t in got] == [sal_at.utcoffset()] * 2


def test_the_hand_written_field_lists_name_every_field_of_their_classes() -> None:
    """`taken`/`join`, `Piece.__reduce__`, `workers._as_text` and `_lists` above spell out
    the fields of HandoffRows, Handoff and Piece: a field added to one of those classes
    and missed there would be dropped on the worker path only (the in-process path keeps
    it), or come back from the pickle as its default."""
    from dataclasses import fields

    assert [f.name for f in fields(HandoffRows)] == ["history", "timers", "cancelled", "tasks",
                                                     "feedback"]
    assert [f.name for f in fields(Handoff)] == ["rows", "outbox", "flags"]
    assert len(taken(_full_handoff(1))) == len(fields(HandoffRows)) + len(fields(Handoff)) - 1
    names = [f.name for f in fields(Piece)]
    piece = Piece(T0, {"person_id": 1}, ["row"], ["flag"], ["poison"],  # type: ignore[list-item]
                  taken(_full_handoff(1)), True)
    assert [getattr(piece, n) for n in names] == list(piece.__reduce__()[1])
