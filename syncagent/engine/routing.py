"""Routing: ordered rules, first match wins; weighted round-robin pools with daily caps.

The rotation state comes in and goes out (the pipeline persists it), so the same inputs and
state always give the same owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syncagent.engine.calendar import BusinessCalendar, compile_calendar
from syncagent.engine.model import (
    STAGE_RANK,
    OwnerResult,
    PersonInput,
    RoutingState,
    User,
    UserDirectory,
)
from syncagent.engine.operators import Predicate, compile_all
from syncagent.engine.rule_files import RoutingFile


@dataclass(frozen=True, slots=True)
class CompiledMember:
    user: str
    weight: int
    daily_cap: int | None


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    name: str
    applies: Predicate
    kind: str                 # account_owner | pool | territory | user | queue
    target: str
    allow_reassign: bool


@dataclass(frozen=True, slots=True)
class CompiledSla:
    remind_hours: float
    escalate_hours: float
    reassign_hours: float
    escalate_to: str          # "manager" or "user:<email or id>"
    qualify_days: float
    out_of_office: str        # "manager", "pool" or "user:<email or id>"
    calendar: BusinessCalendar


@dataclass(frozen=True, slots=True)
class CompiledRouting:
    min_stage_rank: int
    min_stage: str
    fallback_queue: str
    rules: tuple[CompiledRoute, ...]
    pools: Mapping[str, tuple[CompiledMember, ...]]
    sla: CompiledSla


def compile_routing(spec: RoutingFile) -> CompiledRouting:
    rules = []
    for r in spec.rules:
        a = r.assign
        kind, target = (("account_owner", "") if a.account_owner else
                        ("pool", a.pool) if a.pool else
                        ("territory", a.territory) if a.territory else
                        ("user", a.user) if a.user else ("queue", a.queue or ""))
        rules.append(CompiledRoute(r.name, compile_all(r.when), kind, target or "",
                                   r.allow_reassign))
    pools = {p.name: tuple(CompiledMember(m.user, m.weight, m.daily_cap) for m in p.members)
             for p in spec.pools}
    s = spec.sla
    sla = CompiledSla(s.remind_after_hours, s.escalate_after_hours, s.reassign_after_hours,
                      s.escalate_to, s.qualify_within_days, spec.out_of_office,
                      compile_calendar(spec.business_hours))
    return CompiledRouting(STAGE_RANK[spec.route_from_stage], spec.route_from_stage,
                           spec.fallback_queue, tuple(rules), pools, sla)


def label(user: User | None, ref: str | None) -> str:
    """How a message names a user: name, else e-mail, else the reference given."""
    if user is None:
        return ref or "nobody"
    return user.name or user.email or user.id


def available(user: User | None) -> bool:
    """Can take leads and tasks now: active and not out of office."""
    return user is not None and user.active and not user.out_of_office


class _Router:
    def __init__(self, rt: CompiledRouting, users: UserDirectory, state: RoutingState,
                 today: str, excluded: str | None = None) -> None:
        self.rt = rt
        self.users = users
        self.today = today
        self.assigned = dict(state.assigned) if state.day == today else {}
        self.state = state if state.day == today else RoutingState(today, {}, state.weights)
        self.notes: list[str] = []
        self.excluded = excluded   # the owner an SLA reassign takes the lead from

    def allowed(self, user: User) -> bool:
        return user.id != self.excluded

    def count(self, user: User) -> int:
        return user.assigned_today + self.assigned.get(user.id, 0)

    def rotate(self, key: str, members: list[tuple[User, int]]) -> User | None:
        """Smooth weighted round-robin over the members that are available now."""
        if not members:
            return None
        weights = dict(self.state.weights.get(key, {}))
        total = sum(w for _, w in members)
        best: User | None = None
        best_weight = 0
        for user, weight in members:
            current = weights.get(user.id, 0) + weight
            weights[user.id] = current
            if best is None or current > best_weight:
                best, best_weight = user, current
        assert best is not None
        weights[best.id] -= total
        new_weights = {**self.state.weights, key: weights}
        self.assigned[best.id] = self.assigned.get(best.id, 0) + 1
        self.state = RoutingState(self.today, dict(self.assigned), new_weights)
        return best

    def pool_members(self, name: str) -> list[tuple[User, int]]:
        out = []
        skipped = []
        for m in self.rt.pools.get(name, ()):
            user = self.users.find(m.user)
            if user is not None and not self.allowed(user):
                continue
            if not available(user):
                skipped.append(f"{label(user, m.user)} (unavailable)")
                continue
            assert user is not None
            if m.daily_cap is not None and self.count(user) >= m.daily_cap:
                skipped.append(f"{label(user, m.user)} (at daily cap {m.daily_cap})")
                continue
            out.append((user, m.weight))
        if skipped:
            self.notes.append(f"skipped {', '.join(skipped)}")
        return out

    def territory_members(self, territory: str) -> list[tuple[User, int]]:
        return [(u, 1) for u in self.users.in_territory(territory)
                if available(u) and self.allowed(u)]


def route(person: PersonInput, facts: Mapping[str, Any], stage: str, rt: CompiledRouting,
          users: UserDirectory, state: RoutingState, now: datetime,
          reassign_from: str | None = None) -> tuple[OwnerResult, RoutingState]:
    """Who should own this person, and one plain sentence saying why. ``reassign_from``: the
    SLA's reassign step is due, so the lead moves away from that owner."""
    crm = person.crm
    previous = person.previous
    # A CRM record always has an owner; none means the person has no CRM record, and then
    # the owner the engine chose last time stands (else every evaluation would re-route).
    current = crm.owner_id or (previous.owner_id if previous else None)
    current_user = users.find(current) if current else None
    if reassign_from is not None:
        return reassign(person, facts, rt, users, state, now, reassign_from)
    if STAGE_RANK.get(stage, 0) < rt.min_stage_rank:
        who = label(current_user, current) if current else "nobody"
        return OwnerResult(current, "user" if current_user else ("queue" if current else "none"),
                           None, f"Not routed yet: stage {stage} is below {rt.min_stage}, where "
                           f"routing starts; stays with {who}.", False), state
    human_owned = current_user is not None and current_user.active and crm.owner_set_by_human
    # An owner no person chose (the integration user, a default owner) is nobody: routed.
    if current_user is not None and current_user.active and not human_owned \
            and not crm.owner_is_machine:
        return OwnerResult(current, "user", None,
                           f"Kept {label(current_user, current)}, who already owns it.",
                           False), state
    router = _Router(rt, users, state, now.date().isoformat())
    for candidate in rt.rules:
        if not candidate.applies(facts):
            continue
        result = _apply(candidate, person, router)
        if result is None:
            continue
        if human_owned and not candidate.allow_reassign:
            # The rotation is not advanced: the state handed in goes back unchanged.
            return OwnerResult(current, "user", None,
                               f"Kept {label(current_user, current)}: a person assigned this "
                               f"lead, and rule {candidate.name} does not allow reassigning "
                               "it.", False), state
        owner, kind, why = result
        if router.notes:
            why = f"{why} ({'; '.join(router.notes)})"
        return OwnerResult(owner, kind, candidate.name, why + ".", owner != current), \
            router.state
    if human_owned:
        return OwnerResult(current, "user", None,
                           f"Kept {label(current_user, current)}: a person assigned this lead, "
                           "and no rule allows reassigning it.", False), state
    why = f"No routing rule matched, so it goes to the fallback queue {rt.fallback_queue}"
    if router.notes:
        why = f"{why} ({'; '.join(router.notes)})"
    return OwnerResult(rt.fallback_queue, "queue", None, why + ".",
                       rt.fallback_queue != current), router.state


def _apply(rule: CompiledRoute, person: PersonInput, router: _Router
           ) -> tuple[str, str, str] | None:
    if rule.kind == "account_owner":
        account = person.account
        owner = router.users.find(account.owner_id) if account and account.owner_id else None
        if account is None or owner is None or not owner.active or not router.allowed(owner):
            return None
        return owner.id, "user", (f"Assigned to {label(owner, owner.id)}, owner of the "
                                  f"existing account {account.name or account.account_id} "
                                  f"whose domain matches the email (rule {rule.name})")
    if rule.kind == "queue":
        return rule.target, "queue", f"Rule {rule.name} sends it to the queue {rule.target}"
    if rule.kind == "user":
        user = router.users.find(rule.target)
        if user is not None and not router.allowed(user):
            return None
        if not available(user):
            router.notes.append(f"{rule.target} named by rule {rule.name} is unavailable")
            return None
        assert user is not None
        router.assigned[user.id] = router.assigned.get(user.id, 0) + 1
        router.state = RoutingState(router.today, dict(router.assigned), router.state.weights)
        return user.id, "user", f"Rule {rule.name} assigns it to {label(user, user.id)}"
    if rule.kind == "pool":
        chosen = router.rotate(f"pool:{rule.target}", router.pool_members(rule.target))
        where = f"pool {rule.target}"
    else:
        chosen = router.rotate(f"territory:{rule.target}",
                               router.territory_members(rule.target))
        where = f"territory {rule.target}"
    if chosen is None:
        router.notes.append(f"nobody in {where} was available")
        return None
    return chosen.id, "user", (f"Rule {rule.name} matched; {label(chosen, chosen.id)} was next "
                               f"in the {where} rotation")


def reassign(person: PersonInput, facts: Mapping[str, Any], rt: CompiledRouting,
             users: UserDirectory, state: RoutingState, now: datetime, from_id: str
             ) -> tuple[OwnerResult, RoutingState]:
    """Route an MQL nobody accepted in time to another member of the pool (or territory)
    whose rule routed it, or to the fallback queue when nobody else there is available. When
    that rule no longer applies, the rules route it afresh, the old owner left out."""
    router = _Router(rt, users, state, now.date().isoformat(), excluded=from_id)
    why = (f"Reassigned from {label(users.find(from_id), from_id)}: not accepted within "
           f"{rt.sla.reassign_hours:g} business hours (SLA)")
    routed_by = person.previous.routed_by if person.previous else None
    same = next((r for r in rt.rules if r.name == routed_by and r.applies(facts)), None)
    for rule in [same] if same is not None else [r for r in rt.rules if r.applies(facts)]:
        result = _apply(rule, person, router)
        if result is not None:
            owner, kind, how = result
            notes = f" ({'; '.join(router.notes)})" if router.notes else ""
            return OwnerResult(owner, kind, rule.name, f"{why}; {how}{notes}.", True), \
                router.state
    where = f"rule {same.name}" if same is not None else "any routing rule"
    notes = f" ({'; '.join(router.notes)})" if router.notes else ""
    return OwnerResult(rt.fallback_queue, "queue", None,
                       f"{why}; nobody else in {where} was available, so it goes to the "
                       f"fallback queue {rt.fallback_queue}{notes}.", True), router.state


def sla_may_reassign(rt: CompiledRouting, facts: Mapping[str, Any]) -> bool:
    """Whether the SLA may move a lead a person assigned: only when the first pool or
    territory rule that applies says allow_reassign, as routing itself would."""
    for rule in rt.rules:   # a loop: a generator and next() cost more, for every person
        if rule.kind in _POOLED and rule.applies(facts):
            return rule.allow_reassign
    return False


_POOLED = frozenset({"pool", "territory"})
