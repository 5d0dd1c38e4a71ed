"""The hand-over of a person to an owner: routing (with the SLA's reassign step), when the
current owner got it, and the SLA timers that follow from that."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syncagent.engine.model import (
    STAGE_RANK,
    OwnerResult,
    PersonInput,
    RoutingState,
    SlaTimer,
    StageResult,
    UserDirectory,
)
from syncagent.engine.routing import CompiledRouting, route, sla_may_reassign
from syncagent.engine.sla import fired_reassign, handoff_start, reassign_due, sla_timers


@dataclass(slots=True)
class HandOver:
    owner: OwnerResult
    routing: RoutingState
    assigned_at: datetime | None
    routed_by: str | None
    note: str | None          # why an SLA reassign moved the lead, while that owner keeps it
    sal_at: datetime | None
    timers: tuple[SlaTimer, ...]
    routed_from: str | None   # the CRM's owner, while the owner chosen in its place is unwritten
    routed_why: str | None    # the sentence that chose it (EngineState.routed_why)


def hand_over(person: PersonInput, facts: Mapping[str, Any], stage: StageResult,
              rt: CompiledRouting, users: UserDirectory, routing: RoutingState,
              now: datetime) -> HandOver:
    """Route the person and derive the hand-over's memory and timers. Pure."""
    previous = person.previous
    current = person.crm.owner_id or (previous.owner_id if previous else None)
    # A lead a person assigned is moved only where routing itself would move it. Only an
    # MQL's SLA reassigns (`reassign_due`, `sla_timers` read it for no other stage): the
    # routing rules' conditions are not run for the rest, most of a rescore's persons.
    may_reassign = stage.stage == "MQL" and (not person.crm.owner_set_by_human
                                             or sla_may_reassign(rt, facts))
    due = reassign_due(previous, stage.stage, stage.mql_date, current, may_reassign, rt,
                       users, now)
    waiting = None if due else _unwritten(person, stage.stage, rt, users)
    if waiting is not None:
        owner, routing_out = waiting, routing     # not routed again: the rotation stays
    else:
        owner, routing_out = route(person, facts, stage.stage, rt, users, routing, now,
                                   due.owner_id if due else None)
    # A different owner than last time (the agent's choice or a person's) is a new hand-over.
    changed_hands = owner.changed or (previous is not None
                                      and owner.owner_id != previous.owner_id)
    assigned_at = now if changed_hands else (previous.assigned_at if previous else None)
    same_owner = previous is not None and not changed_hands
    routed_by = owner.rule or (previous.routed_by if same_owner and previous else None)
    note = owner.why if due else (previous.handoff_note if same_owner and previous else None)
    if note and not due and waiting is None:
        owner.why = f"{owner.why} {note}"   # the rep keeps seeing why the lead came to them
    sal_at = None
    if stage.stage == "SAL":
        kept = previous.sal_at if previous and previous.stage == "SAL" else None
        sal_at = kept or now
    timers = sla_timers(stage.stage, handoff_start(stage.mql_date, assigned_at), sal_at, owner,
                        may_reassign, rt, users, routed_by)
    if due is not None:
        timers = (fired_reassign(due, owner), *timers)
    crm_owner = person.crm.owner_id
    unwritten = owner.kind == "user" and crm_owner is not None and owner.owner_id != crm_owner
    return HandOver(owner, routing_out, assigned_at, routed_by, note, sal_at, timers,
                    crm_owner if unwritten else None, owner.why if unwritten else None)


def _unwritten(person: PersonInput, stage: str, rt: CompiledRouting, users: UserDirectory
               ) -> OwnerResult | None:
    """The owner the last evaluation chose in place of the CRM's, while the CRM still shows
    the one it replaced (the write waits in the outbox: push off, the CRM down, a dry run).
    It stands as it would once written ("kept, who already owns it"), with the sentence
    that chose it: evaluating again neither routes again nor turns the rotation, so nothing
    new is planned. Any other owner on the CRM, a chosen user who is no longer active, or a
    stage below routing's: routed as usual."""
    previous, crm = person.previous, person.crm
    if previous is None or previous.routed_from is None or previous.routed_why is None \
            or crm.owner_id != previous.routed_from or previous.owner_id is None:
        return None
    user = users.find(previous.owner_id)
    if user is None or not user.active or STAGE_RANK.get(stage, 0) < rt.min_stage_rank:
        return None
    return OwnerResult(user.id, "user", previous.routed_by, previous.routed_why, False)
