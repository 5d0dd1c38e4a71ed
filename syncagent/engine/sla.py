"""SLA timers: the hand-off schedule of an MQL (remind, escalate, reassign, counted in
business hours from the hand-over) and the qualify window of an accepted lead (calendar days
from the acceptance); and who receives each step's task.

A timer is named by person, kind and ``started_at``: a new hand-over (a new owner, a new MQL
episode) starts new timers, and the pipeline cancels the ones the engine stops emitting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from syncagent.engine.model import (
    EngineState,
    OwnerResult,
    SlaTimer,
    User,
    UserDirectory,
    moment_text,
)
from syncagent.engine.routing import CompiledRouting, available, label

_STAMP = "%Y-%m-%d %H:%M UTC"


@dataclass(frozen=True, slots=True)
class DueReassign:
    """The reassign step came due: the lead leaves ``owner_id``."""

    owner_id: str
    started_at: datetime
    due_at: datetime


def handoff_start(mql_date: datetime | None, assigned_at: datetime | None) -> datetime | None:
    """The hand-over: the later of becoming MQL and being assigned to the current owner."""
    known = [d for d in (mql_date, assigned_at) if d is not None]
    return max(known) if known else None


def reassign_due(previous: EngineState | None, stage_name: str, mql_date: datetime | None,
                 current_owner: str | None, may_reassign: bool, rt: CompiledRouting,
                 users: UserDirectory, now: datetime) -> DueReassign | None:
    """The reassign step, when it is due for an MQL its user owner has not accepted. An
    owner other than the one the last evaluation saw is a new hand-over: its clock starts
    afresh, nothing is due."""
    if not may_reassign or stage_name != "MQL" or previous is None \
            or previous.stage != "MQL":
        return None
    if current_owner is None or current_owner != previous.owner_id \
            or users.find(current_owner) is None:
        return None
    start = handoff_start(mql_date, previous.assigned_at)
    if start is None:
        return None
    due = rt.sla.calendar.add_business_hours(start, rt.sla.reassign_hours)
    return DueReassign(current_owner, start, due) if due <= now else None


def sla_timers(stage_name: str, start: datetime | None, sal_at: datetime | None,
               owner: OwnerResult, may_reassign: bool, rt: CompiledRouting,
               users: UserDirectory, routed_by: str | None) -> tuple[SlaTimer, ...]:
    """The steps that apply now: the hand-off schedule of an MQL owned by a user (without
    the reassign step when the lead may not be moved), or the qualify window of an SAL owned
    by a user; nothing once the stage has moved on."""
    if owner.kind != "user" or owner.owner_id is None:
        return ()
    if stage_name == "MQL" and start is not None:
        steps = _handoff(start, owner.owner_id, rt, users, routed_by)
        return steps if may_reassign else tuple(t for t in steps if t.kind != "reassign")
    if stage_name == "SAL" and sal_at is not None:
        return _qualify(sal_at, owner.owner_id, rt, users, routed_by)
    return ()


def fired_reassign(due: DueReassign, owner: OwnerResult) -> SlaTimer:
    """The reassign step that just moved the lead: its task tells the new owner why (no task
    when the lead went to a queue: a queue cannot own a task)."""
    to = owner.owner_id if owner.kind == "user" else None
    return SlaTimer("reassign", due.due_at, to, "This MQL was not accepted within the SLA "
                    "and has been reassigned to you; please accept or work it.",
                    due.started_at, due.owner_id)


def _handoff(start: datetime, owner_id: str, rt: CompiledRouting, users: UserDirectory,
             routed_by: str | None) -> tuple[SlaTimer, ...]:
    sla, cal = rt.sla, rt.sla.calendar
    who = label(users.find(owner_id), owner_id)
    remind_to, remind_note = stand_in(owner_id, rt, users, routed_by)
    boss, boss_note = _escalation_target(owner_id, rt, users)
    escalate_to, away_note = stand_in(boss, rt, users, routed_by)
    handed = f"handed to {who} at {_stamped(start)}"
    return (
        SlaTimer("remind", cal.add_business_hours(start, sla.remind_hours), remind_to,
                 f"Please accept or work this MQL: {handed}; accept it within "
                 f"{sla.remind_hours:g} business hours.{remind_note}", start, owner_id),
        SlaTimer("escalate", cal.add_business_hours(start, sla.escalate_hours), escalate_to,
                 f"Escalation: this MQL was {handed} and is not accepted after "
                 f"{sla.escalate_hours:g} business hours; please follow up with {who}."
                 f"{boss_note}{away_note}", start, owner_id),
        SlaTimer("reassign", cal.add_business_hours(start, sla.reassign_hours), owner_id,
                 f"This MQL was {handed}; not accepted within {sla.reassign_hours:g} business "
                 "hours, it is routed to another rep.", start, owner_id),
    )


def _qualify(sal_at: datetime, owner_id: str, rt: CompiledRouting, users: UserDirectory,
             routed_by: str | None) -> tuple[SlaTimer, ...]:
    days = rt.sla.qualify_days
    to, note = stand_in(owner_id, rt, users, routed_by)
    window, late = _qualify_messages(sal_at, sal_at.utcoffset(), days, note)
    return (
        SlaTimer("qualify", sal_at + timedelta(days=days), to, window, sal_at, owner_id),
        SlaTimer("qualify_late", sal_at + timedelta(days=days * 1.5), to, late, sal_at,
                 owner_id),
    )


@lru_cache(maxsize=1024)
def _qualify_messages(sal_at: datetime, _offset: timedelta | None, days: float,
                      note: str) -> tuple[str, str]:
    """The qualify steps' messages, kept for the next lead accepted at the same moment (a
    rescore accepts each new SAL at its ``now``): made once, and one text object for them
    all, which a chunk's pickle then holds once. The offset is part of the key, as for
    `moment_text`: equal moments of other offsets read otherwise."""
    accepted = f"accepted at {_stamped(sal_at)}"
    return (f"Please qualify, recycle or disqualify this lead: {accepted}, and the "
            f"window is {days:g} days.{note}",
            f"Overdue: this lead was {accepted} and is still not qualified, recycled or "
            f"disqualified after {days * 1.5:g} days.{note}")


def _stamped(moment: datetime) -> str:
    """A moment as a task shows it."""
    return moment_text(moment, _STAMP)


def _escalation_target(owner_id: str, rt: CompiledRouting, users: UserDirectory
                       ) -> tuple[str, str]:
    """The escalation's recipient (escalate_to) and a note when it falls back to the owner."""
    owner = users.find(owner_id)
    who = label(owner, owner_id)
    rule = rt.sla.escalate_to
    if rule.startswith("user:"):
        named = users.find(rule.removeprefix("user:").strip())
        if named is not None:
            return named.id, ""
        return owner_id, (f" (escalate_to names {rule.removeprefix('user:').strip()}, who is "
                          f"not a Salesforce user, so this goes to {who}.)")
    manager = users.find(owner.manager_id) if owner is not None and owner.manager_id else None
    if manager is None:
        return owner_id, (f" ({who} has no manager in Salesforce (User.ManagerId), so this "
                          f"goes to {who}.)")
    return manager.id, ""


def stand_in(user_id: str | None, rt: CompiledRouting, users: UserDirectory,
             routed_by: str | None) -> tuple[str | None, str]:
    """Who gets a task meant for ``user_id``: that user, or for an out-of-office (or
    inactive) user whoever ``out_of_office`` names; with a note saying so."""
    user = users.find(user_id) if user_id else None
    if user is None or available(user):
        return (user.id if user else user_id), ""
    why = "out of office" if user.out_of_office else "inactive"
    substitute = _substitute(user, rt, users, routed_by)
    if substitute is None:
        return user.id, (f" ({label(user, user.id)} is {why} and out_of_office: "
                         f"{rt.sla.out_of_office} finds nobody available.)")
    return substitute.id, (f" ({label(user, user.id)} is {why}, so this goes to "
                           f"{label(substitute, substitute.id)} per out_of_office: "
                           f"{rt.sla.out_of_office}.)")


def _substitute(user: User, rt: CompiledRouting, users: UserDirectory,
                routed_by: str | None) -> User | None:
    rule = rt.sla.out_of_office
    if rule == "manager":
        manager = users.find(user.manager_id) if user.manager_id else None
        return manager if available(manager) else None
    if rule.startswith("user:"):
        named = users.find(rule.removeprefix("user:").strip())
        return named if available(named) and named is not user else None
    members = _pool_of(routed_by, rt, users)
    ids = [m.id for m in members]
    # The next member after the absent one, in pool order, wrapping round.
    start = ids.index(user.id) + 1 if user.id in ids else 0
    for member in members[start:] + members[:start]:
        if member.id != user.id and available(member):
            return member
    return None


def _pool_of(routed_by: str | None, rt: CompiledRouting, users: UserDirectory) -> list[User]:
    """The members of the pool or territory whose rule routed the lead, in order."""
    rule = next((r for r in rt.rules if r.name == routed_by), None)
    if rule is None:
        return []
    if rule.kind == "pool":
        found = (users.find(m.user) for m in rt.pools.get(rule.target, ()))
        return [u for u in found if u is not None]
    if rule.kind == "territory":
        return sorted((u for u in users.by_id.values() if u.territory == rule.target),
                      key=lambda u: u.id)
    return []
