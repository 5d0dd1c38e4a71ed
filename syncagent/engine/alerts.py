"""Alerts: a hot lead did something the owner should hear about now. At most one alert per
person per ``alert_cooldown_hours`` (the first rule in file order that fires), addressed to
the owner or, when the owner is away, to whoever ``out_of_office`` names."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from syncagent.engine.loader import Rules
from syncagent.engine.model import Activity, Alert, OwnerResult, PersonInput, UserDirectory
from syncagent.engine.operators import GRADE_RANK
from syncagent.engine.scoring import CompiledAlert
from syncagent.engine.sla import stand_in

_FIRST_LOOK = timedelta(days=1)   # a person seen for the first time: the last day's activity
_HIGH_PRIORITY_RANK = GRADE_RANK["A"]
_DETAIL_KEYS = ("url", "form", "campaign", "subject")


def alerts(person: PersonInput, rules: Rules, facts: Mapping[str, Any], owner: OwnerResult,
           users: UserDirectory, routed_by: str | None, now: datetime
           ) -> tuple[tuple[Alert, ...], datetime | None]:
    """The alert to send now (none, or one) and the new ``last_alert_at``."""
    previous = person.previous
    last = previous.last_alert_at if previous else None
    cooldown = timedelta(hours=rules.scoring.alert_cooldown_hours)
    if last is not None and now < last + cooldown:
        return (), last
    since = previous.evaluated_at if previous and previous.evaluated_at else now - _FIRST_LOOK
    for rule in rules.compiled.scoring.alerts:
        newest = _newest(rule, person, facts, since, now) if rule.applies(facts) else None
        if newest is not None:
            return (_alert(rule, newest, person, rules, facts, owner, users, routed_by),), now
    return (), last


def _newest(rule: CompiledAlert, person: PersonInput, facts: Mapping[str, Any],
            since: datetime, now: datetime) -> Activity | None:
    newest: Activity | None = None
    for activity in person.activities:
        if activity.kind in rule.kinds and since < activity.occurred_at <= now \
                and rule.activity_test(activity.details) \
                and (newest is None or activity.occurred_at > newest.occurred_at):
            newest = activity
    return newest


def _alert(rule: CompiledAlert, newest: Activity, person: PersonInput, rules: Rules,
           facts: Mapping[str, Any], owner: OwnerResult, users: UserDirectory,
           routed_by: str | None) -> Alert:
    detail = next((str(newest.details[k]) for k in _DETAIL_KEYS if newest.details.get(k)), "")
    owner_id = owner.owner_id if owner.kind == "user" else None
    # A queue cannot own a task: an alert for a queue-owned person has no recipient.
    recipient, note = stand_in(owner_id, rules.compiled.routing, users, routed_by) \
        if owner_id else (None, "")
    who = facts.get("email") or person.person_id
    message = (f"{rule.name}: {who} ({facts.get('company') or 'unknown company'}), grade "
               f"{facts['grade']}, score {facts['score']}, just did {newest.kind}"
               f"{' ' + detail if detail else ''}{note}")
    key = f"{person.person_id}:{rule.name}:{newest.id or newest.occurred_at.isoformat()}"
    return Alert(rule.name, owner_id, message, key, newest.occurred_at, recipient, newest.kind,
                 detail, facts.get("grade_rank", -1) >= _HIGH_PRIORITY_RANK)
