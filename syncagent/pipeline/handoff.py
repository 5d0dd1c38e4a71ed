"""Handoff: what one evaluated chunk means for the loop after an MQL.

From each person's new decision, the stored one before it and the stored timer steps:
- stage history: every change of stage, its cause (rule | rep | recycle | sla) and actor;
- SLA timers: steps the engine emits are stored pending (one stored as it is already is not
  written again); a step due by now is fired with one task; a pending step the engine no
  longer emits (the lead was accepted, converted, disqualified, routed to someone else) is
  cancelled, except the reassign step that the engine has just carried out (the owner
  changed), which fires;
- alert tasks (the engine keeps the cooldown; a key already given is not given again);
- feedback: a rep's recycle or disqualification, with the reason, source and campaign.
The rows are committed by the caller with the decisions (`StateStore.commit_evaluation`):
a crash before that commit re-derives the same keys next cycle, and after it the outbox
delivers each task once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any

from connectors.base import Connector, RecordLinks
from state.flags import Flag
from state.handoff import (
    CANCELLED,
    FIRED,
    PENDING,
    FeedbackRow,
    HandoffRows,
    StageChange,
    TaskRecord,
    TimerRow,
)
from state.store import NewOutboxRow, StateStore
from syncagent.engine.model import Alert, Decision, SlaTimer
from syncagent.pipeline.decide import Evaluated, World
from syncagent.pipeline.plan import PersonPlan
from syncagent.pipeline.tasks import TaskContext, TaskWanted, place, who

KEY_CHARS = 80       # Task.Idempotency_Key__c is an 80-character external id
REP_STAGES = frozenset({"SAL", "SQL", "Opportunity"})   # reached by what a rep did
HIGH_PRIORITY_KINDS = frozenset({"escalate", "qualify_late"})
LEAD_SOURCE = "lead_source"   # the canonical field (mappings/fields.yaml) feedback keeps
AGENT = "agent"
SUBJECTS = {
    "remind": "Accept or reject this MQL: {who}",
    "escalate": "Escalation: {who} is not accepted by {owner}",
    "reassign": "Reassigned to you: {who}",
    "qualify": "Qualify {who}: move to SQL, recycle or disqualify",
    "qualify_late": "Overdue: qualify {who}",
}


@dataclass
class Handoff:
    """A chunk's handoff rows, the task rows for the outbox, and data-quality items."""

    rows: HandoffRows = field(default_factory=HandoffRows)
    outbox: list[NewOutboxRow] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)


@dataclass(frozen=True)
class Stored:
    """What the state DB holds for a chunk's persons before this evaluation."""

    previous: Mapping[int, Mapping[str, Any]]          # person -> stored decision
    timers: Mapping[int, Sequence[TimerRow]] = field(default_factory=dict)
    given: frozenset[str] = frozenset()                  # alert task keys already given
    campaigns: Mapping[int, str] = field(default_factory=dict)   # newest, for feedback


def task_context(connectors: Mapping[str, Connector], world: World,
                 zone: tzinfo = UTC) -> TaskContext:
    """Tasks go to the agent's systems; links to records come from those that can make them;
    "due today" is the day in ``zone`` (the business hours' timezone, where the reps work)."""
    links = {s: c for s, c in connectors.items() if isinstance(c, RecordLinks)}

    def record_url(system: str, object_name: str, record_id: str) -> str | None:
        connector = links.get(system)
        return connector.record_url(object_name, record_id) if connector else None

    return TaskContext({s: c.profile for s, c in connectors.items()}, world, record_url,
                       today=lambda now: now.astimezone(zone).date())


def handoff_for_chunk(store: StateStore, chunk: Evaluated, ctx: TaskContext,
                      now: datetime) -> Handoff:
    """Read what the chunk's persons have stored, then derive their handoff."""
    return derive(chunk.plans, chunk.gone, stored_for(store, chunk), ctx, now)


def stored_for(store: StateStore, chunk: Evaluated) -> Stored:
    """What the chunk's persons have stored (read once for the chunk; the worker pool then
    derives each person's handoff on its own: pipeline/workers.py)."""
    pids = [plan.person_id for plan in chunk.plans] + list(chunk.gone)
    alert_keys = [task_key(a.idempotency_key) for p in chunk.plans for a in p.decision.alerts]
    return Stored(chunk.previous, store.handoff.timers_of(pids),
                  frozenset(store.handoff.existing_task_keys(alert_keys)) if alert_keys
                  else frozenset(),   # (no alert, most chunks of a rescore: no read)
                  _campaigns(store, [p for p in chunk.plans if _rep_verdict(p.decision)]))


def derive(plans: Sequence[PersonPlan], gone: Iterable[int], stored: Stored,
           ctx: TaskContext, now: datetime) -> Handoff:
    """The handoff of evaluated persons (``gone``: persons whose records were all deleted,
    whose pending steps are cancelled)."""
    out = Handoff()
    for plan in plans:
        derive_person(plan, stored, ctx, now, out)
    for pid in gone:
        cancel_gone(pid, stored, out)
    return out


def derive_person(plan: PersonPlan, stored: Stored, ctx: TaskContext, now: datetime,
                  out: Handoff) -> None:
    """One evaluated person's handoff, added to ``out``."""
    before = stored.previous.get(plan.person_id)
    _stage_history(plan, before, now, out)
    _feedback(plan, before, stored.campaigns.get(plan.person_id), now, out)
    _timers(plan, stored.timers.get(plan.person_id, ()), before, ctx, now, out)
    for alert in plan.decision.alerts:
        if task_key(alert.idempotency_key) not in stored.given:
            _give(out, _alert_task(plan, alert), plan, ctx, now)


def cancel_gone(person_id: int, stored: Stored, out: Handoff) -> None:
    """A person whose records were all deleted: their pending steps are cancelled."""
    out.rows.cancelled += [t.key for t in stored.timers.get(person_id, ()) if t.status == PENDING]


# One person's handoff as the worker pool sends it (pipeline/pieces.py): the rows of
# `HandoffRows` (history, timers, cancelled, tasks, feedback), then the outbox's task rows and
# the data-quality items; each () when empty, and all of it NO_HANDOFF when nothing is: a
# rescore's persons mostly add one or two rows, and a `Handoff` of seven lists each cost ~4 µs
# a person to pickle and unpickle.
HandoffParts = tuple[Sequence[StageChange], Sequence[TimerRow], Sequence[str],
                     Sequence[TaskRecord], Sequence[FeedbackRow], Sequence[NewOutboxRow],
                     Sequence[Flag]]
NO_HANDOFF: HandoffParts = ((), (), (), (), (), (), ())


def taken(out: Handoff) -> HandoffParts:
    """What ``out`` holds, as parts; ``out`` is left empty (each list handed over is
    replaced, so one `Handoff` serves a whole chunk, person after person)."""
    rows = out.rows
    parts: HandoffParts = (rows.history, rows.timers, rows.cancelled, rows.tasks, rows.feedback,
                           out.outbox, out.flags)
    if not any(parts):
        return NO_HANDOFF
    rows.history, rows.timers, rows.cancelled, rows.tasks, rows.feedback = [], [], [], [], []
    out.outbox, out.flags = [], []
    history, timers, cancelled, tasks, feedback, outbox, flags = parts
    return (history or (), timers or (), cancelled or (), tasks or (), feedback or (),
            outbox or (), flags or ())


def join(parts: HandoffParts, out: Handoff) -> None:
    """Add one person's parts (`taken`) to ``out``."""
    history, timers, cancelled, tasks, feedback, outbox, flags = parts
    rows = out.rows
    rows.history += history
    rows.timers += timers
    rows.cancelled += cancelled
    rows.tasks += tasks
    rows.feedback += feedback
    out.outbox += outbox
    out.flags += flags


def timer_key(person_id: int, kind: str, started_at: datetime) -> str:
    return f"sla:{person_id}:{kind}:{_second(started_at)}"


@lru_cache(maxsize=1024)
def _second(moment: datetime) -> str:
    """Kept: a person's timer steps count from one moment (a rescore's hand-overs often from
    its ``now``), and formatting it costs ~3.5 µs."""
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def task_key(key: str) -> str:
    """A task's key as stored and sent: the idempotency key itself, or, past the 80
    characters the key field holds, its start and a digest of the whole (still stable)."""
    if len(key) <= KEY_CHARS:
        return key
    return key[:KEY_CHARS - 41] + "~" + hashlib.sha256(key.encode()).hexdigest()[:40]


# --- stage history and feedback --------------------------------------------------------------

def _rep_verdict(decision: Decision) -> bool:
    return decision.stage.recycled or decision.stage.disqualified


def _stage_history(plan: PersonPlan, before: Mapping[str, Any] | None, now: datetime,
                   out: Handoff) -> None:
    result, pid = plan.decision.stage, plan.person_id
    old = before.get("stage") if before else None
    if result.stage == old and not _rep_verdict(plan.decision):
        return
    cause, actor = _cause(plan.decision, before)
    detail: dict[str, Any] = {"reason": result.reason, "grade": plan.decision.grade.grade,
                              "score": plan.decision.score.score}
    if cause != "rule":
        detail["lead_status"] = plan.decision.state.seen_lead_status
        detail["rep_reason"] = plan.decision.state.seen_disqualified_reason
    out.rows.history.append(StageChange(
        f"{pid}:{old or '-'}>{result.stage}:{_stamp(now)}", pid, now, old, result.stage,
        cause, _clip(actor, 120), detail))


def _cause(decision: Decision, before: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """rule (thresholds, CRM facts), rep (a status a rep set) or recycle; the actor is the
    rule's stage, or the owner who had the lead when the rep acted."""
    owner = (before or {}).get("owner") or decision.owner.owner_id
    if decision.stage.recycled:
        return "recycle", owner
    if decision.stage.disqualified or decision.stage.stage in REP_STAGES:
        return "rep", owner
    return "rule", f"lifecycle: {decision.stage.stage}"


def _feedback(plan: PersonPlan, before: Mapping[str, Any] | None, campaign: str | None,
              now: datetime, out: Handoff) -> None:
    decision, pid = plan.decision, plan.person_id
    if not _rep_verdict(decision):
        return
    outcome = "recycled" if decision.stage.recycled else "disqualified"
    owner = (before or {}).get("owner") or decision.owner.owner_id
    out.rows.feedback.append(FeedbackRow(
        f"{pid}:{outcome}:{_stamp(now)}", pid, now, outcome,
        _clip(decision.state.seen_disqualified_reason, 120),
        _clip(decision.state.seen_lead_status, 80),
        _clip(plan.profile.get(LEAD_SOURCE), 120), _clip(campaign, 200), _clip(owner, 64),
        {"stage_before": (before or {}).get("stage"), "grade": decision.grade.grade,
         "score": decision.score.score}))


def _campaigns(store: StateStore, plans: Sequence[PersonPlan]) -> dict[int, str]:
    """The newest campaign each person responded to (from their activities), read only for
    the few persons a rep has just sent back."""
    if not plans:
        return {}
    acts = store.mirror.activities_for((r.object, r.remote_id) for p in plans
                                       for r in p.records)   # one read for the whole chunk
    out: dict[int, str] = {}
    for plan in plans:
        touched = [a for r in plan.records for a in acts.get((r.object, r.remote_id), [])
                   if a.details.get("campaign")]
        if touched:
            newest = max(touched, key=lambda a: a.occurred_at)
            out[plan.person_id] = str(newest.details["campaign"])
    return out


# --- timers ------------------------------------------------------------------------------------

def _timers(plan: PersonPlan, stored: Sequence[TimerRow], before: Mapping[str, Any] | None,
            ctx: TaskContext, now: datetime, out: Handoff) -> None:
    if not stored and not plan.decision.sla:
        return   # no step emitted, none stored (most of a rescore's persons): nothing to do
    by_key = {t.key: t for t in stored}
    seen_at = before.get("evaluated_at") if before else None
    emitted: set[str] = set()
    for timer in plan.decision.sla:
        started = _started(timer, plan.decision)
        key = timer_key(plan.person_id, timer.kind, started)
        if key in emitted:
            continue
        emitted.add(key)
        if key in by_key and by_key[key].status == FIRED:
            continue   # fired once, never again (the settle pass, a re-run cycle)
        row = TimerRow(key, plan.person_id, timer.kind, started, timer.due_at,
                       _clip(timer.owner_id, 64), PENDING, None,
                       {"message": timer.message, "lead_owner": timer.lead_owner_id})
        if timer.due_at <= now and _overdue_at_first_sight(timer, seen_at):
            _keep(_skipped(row), by_key, out)
        elif timer.due_at <= now:
            _fire(plan, row, timer.owner_id, ctx, now, out)
        else:
            _keep(row, by_key, out)
    for step in stored:
        if step.status != PENDING or step.key in emitted:
            continue
        if step.kind == "reassign" and step.due_at <= now and plan.decision.owner.changed:
            _fire(plan, step, None, ctx, now, out)   # the engine has just reassigned it
        else:
            out.rows.cancelled.append(step.key)


def _keep(row: TimerRow, stored: Mapping[str, TimerRow], out: Handoff) -> None:
    """A step to store, unless it is stored as it is already: a re-evaluation emits the
    person's pending steps again (~0.8 a person in a rescore), and writing one unchanged
    changes nothing (each of its columns the same instant, text and detail) but costs the
    step's JSON, its crossing from the worker and its row in the commit."""
    if stored.get(row.key) != row:
        out.rows.timers.append(row)


def _overdue_at_first_sight(timer: SlaTimer, seen_at: datetime | None) -> bool:
    """A step the agent never stored that was due before it last looked at the person (or
    before it first did): the lead waited before the agent was there (a first sync, the first
    cycle after an upgrade). Firing it now would bury reps in tasks for old leads, so it is
    recorded as skipped. A reassign is the exception: the engine has carried it out already.
    A step that came due since the last look (the agent was down) still fires."""
    if timer.kind == "reassign":
        return False
    return seen_at is None or timer.due_at <= seen_at


def _skipped(row: TimerRow) -> TimerRow:
    return TimerRow(row.key, row.person_id, row.kind, row.started_at, row.due_at,
                    row.recipient, CANCELLED, None,
                    {**row.detail, "skipped": "overdue when the agent first saw it"})


def _started(timer: SlaTimer, decision: Decision) -> datetime:
    """The moment the timer counts from: the engine's, else the hand-over it implies."""
    if timer.started_at is not None:
        return timer.started_at
    state = decision.state
    moments = [d for d in (state.mql_date, state.assigned_at) if d is not None]
    return max(moments) if moments else timer.due_at


def _fire(plan: PersonPlan, step: TimerRow, recipient: str | None, ctx: TaskContext,
          now: datetime, out: Handoff) -> None:
    """Mark a step fired and give its task (a reassign goes to the new owner, and is kept in
    stage history with the reason the rep sees)."""
    decision = plan.decision
    out.rows.timers.append(TimerRow(step.key, step.person_id, step.kind, step.started_at,
                                    step.due_at, step.recipient, FIRED, now, step.detail))
    if step.kind == "reassign":
        recipient = decision.owner.owner_id if decision.owner.kind == "user" else None
        lead_owner = step.detail.get("lead_owner") or step.recipient
        out.rows.history.append(StageChange(
            f"{plan.person_id}:sla:reassign:{_stamp(step.started_at)}", plan.person_id, now,
            decision.stage.stage, decision.stage.stage, "sla", AGENT,
            {"reason": decision.owner.why, "from_owner": lead_owner,
             "to_owner": decision.owner.owner_id}))
    _give(out, _timer_task(plan, step, recipient, ctx), plan, ctx, now)


def _timer_task(plan: PersonPlan, step: TimerRow, recipient: str | None,
                ctx: TaskContext) -> TaskWanted:
    decision = plan.decision
    lead_owner = step.detail.get("lead_owner") or decision.owner.owner_id
    owner = ctx.world.users.by_id.get(str(lead_owner))
    subject = SUBJECTS.get(step.kind, step.kind + ": {who}").format(
        who=who(plan), owner=owner.name if owner and owner.name else "the owner")
    message = str(step.detail.get("message") or "")
    lines = [message] if message else []
    if step.kind == "reassign":
        lines.append(decision.owner.why)
    return TaskWanted(step.key, step.kind, step.kind, recipient, subject,
                      [*lines, "", *_about(decision)], step.kind in HIGH_PRIORITY_KINDS)


def _alert_task(plan: PersonPlan, alert: Alert) -> TaskWanted:
    """The alert's recipient is the engine's (the owner, or per out_of_office)."""
    doing = " ".join(part for part in (alert.activity_kind, alert.activity_detail) if part)
    subject = f"{alert.kind}: {who(plan)}" + (f" ({doing})" if doing else "")
    lines = [alert.message, f"Activity: {doing or 'see above'} at "
                            f"{alert.occurred_at:%Y-%m-%d %H:%M} UTC", ""]
    return TaskWanted(task_key(alert.idempotency_key), "alert", _clip(alert.kind, 80) or "alert",
                      alert.recipient_id or alert.owner_id, subject,
                      [*lines, *_about(plan.decision)], alert.high_priority)


def _about(decision: Decision) -> list[str]:
    return [f"Grade {decision.grade.grade}, score {decision.score.score}, stage "
            f"{decision.stage.stage}", "", decision.reasons_text()]


def _give(out: Handoff, task: TaskWanted, plan: PersonPlan, ctx: TaskContext,
          now: datetime) -> None:
    placed = place(task, plan, ctx, now)
    out.rows.tasks.append(placed.record)
    if placed.row is not None:
        out.outbox.append(placed.row)
    if placed.flag is not None:
        out.flags.append(placed.flag)


@lru_cache(maxsize=256)
def _stamp(moment: datetime) -> str:
    """Kept: a chunk stamps every person's history with the same ``now`` (formatting it
    costs ~3.7 µs; equal moments are one instant, so the same text)."""
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"


def _clip(value: Any, limit: int) -> str | None:
    """A value for a bounded column (remote data can be any length)."""
    if value in (None, ""):
        return None
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
