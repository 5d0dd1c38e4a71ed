"""Tasks: an alert or an SLA step becomes one task for one person, in the system where that
person works, as an outbox row that creates it exactly once.

Where a task goes (every system fact comes from the profiles' ``TaskSpec``):
- the CRM (the profile with ``crm``), when the person has a live record there: the task
  points at it (``who``: the Contact of a converted lead, else the Lead) and is owned by the
  recipient, who must be an active CRM user. A queue never owns a task (Salesforce refuses a
  Task whose OwnerId is a queue, API-FACTS "Where real orgs are stricter");
- otherwise a system whose tasks are associated with its person record (HubSpot), owned by
  the recipient's owner id there (``World.owner_for``).
No recipient, no such user, no record to attach to: no task, and the ``handoff_tasks`` row
and a data-quality item say why. Never a crash: one person's task never stops a cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from connectors.profile import SystemProfile, TaskSpec
from state.flags import Flag
from state.handoff import TaskRecord
from state.store import MirrorRow, NewOutboxRow
from syncagent.pipeline.decide import World
from syncagent.pipeline.plan import PersonPlan

SUBJECT_CHARS = 255      # Salesforce Task.Subject is a 255-character string
BODY_CHARS = 4_000       # the reasons text can reach 32,000: a task shows the start of it
NO_TASK = "task_not_given"

# (system, object, record id) -> a link to the record in that system's UI, or None
RecordUrl = Callable[[str, str, str], str | None]


def no_links(_system: str, _object: str, _record_id: str) -> str | None:
    return None


@dataclass(frozen=True)
class TaskContext:
    """What placing a task needs beyond the person: the agent's systems, the CRM's users and
    their owner ids elsewhere, links to records, and today's date where the work happens."""

    profiles: Mapping[str, SystemProfile]
    world: World
    record_url: RecordUrl = no_links
    today: Callable[[datetime], date] = field(default=lambda now: now.date())


@dataclass(frozen=True)
class TaskWanted:
    """A task to give: what happened (``subject``, ``lines``) and to whom (a CRM user id)."""

    key: str                 # the task's idempotency key (timer key or alert key)
    kind: str                # alert | remind | escalate | reassign | qualify | qualify_late
    name: str                # the alert rule's name, or the timer kind
    recipient: str | None
    subject: str
    lines: Sequence[str]
    high_priority: bool = False


@dataclass
class Placed:
    """A task's outcome: the outbox row (None when it cannot be given), its record, a flag."""

    row: NewOutboxRow | None
    record: TaskRecord
    flag: Flag | None = None


def place(task: TaskWanted, plan: PersonPlan, ctx: TaskContext, now: datetime) -> Placed:
    """The outbox row that creates this task, or the reason there is none."""
    pid = plan.person_id
    if task.recipient is None:
        return _not_given(task, pid, now, "no one to give it to: the owner is a queue or "
                                          "nobody, and no other recipient is configured")
    target = _target(plan, ctx)
    if target is None:
        return _not_given(task, pid, now, "the person has no live record in a system that "
                                          "takes tasks (deleted, or only in a system without)")
    profile, spec, record = target
    owner, why_not = _owner(task.recipient, profile, ctx.world)
    if owner is None:
        return _not_given(task, pid, now, why_not, system=profile.system)
    fields = _fields(task, plan, spec, profile, record, owner, ctx, now)
    row = NewOutboxRow(profile.system, spec.object, "create", fields,
                       f"{profile.system}:task:{task.key}", person_id=pid)
    detail = {"subject": fields[spec.subject], "record": f"{record.object} {record.remote_id}",
              "owner": owner, "priority": fields[spec.priority], "due": fields[spec.due]}
    return Placed(row, TaskRecord(task.key, pid, task.kind, task.name, profile.system,
                                  _bounded(task.recipient), now, detail))


def _not_given(task: TaskWanted, pid: int, now: datetime, reason: str,
               system: str | None = None) -> Placed:
    detail = {"subject": task.subject[:SUBJECT_CHARS], "not_given": reason}
    if system is not None:
        detail["system"] = system
    record = TaskRecord(task.key, pid, task.kind, task.name, None, _bounded(task.recipient), now,
                        detail)
    flag = Flag(NO_TASK, f"task:{task.key}", {"person_id": pid, "kind": task.kind,
                                              "recipient": task.recipient, "reason": reason})
    return Placed(None, record, flag)


def _target(plan: PersonPlan, ctx: TaskContext
            ) -> tuple[SystemProfile, TaskSpec, MirrorRow] | None:
    """The CRM first, where the person has a record there; then the other systems."""
    ordered = sorted(ctx.profiles.values(), key=lambda p: (p.crm is None, p.system))
    for profile in ordered:
        if profile.tasks is None:
            continue
        record = _task_record(plan, profile, profile.tasks)
        if record is not None:
            return profile, profile.tasks, record
    return None


def _task_record(plan: PersonPlan, profile: SystemProfile, spec: TaskSpec) -> MirrorRow | None:
    """The record a task of this system points at (a converted lead is read-only: its
    Contact takes the task)."""
    objects = [spec.association] if spec.who is None else \
        [p.object for p in profile.person_objects]
    primary = profile.crm.primary_object if profile.crm is not None else None
    live = [r for r in plan.records
            if r.system == profile.system and r.object in objects and not r.deleted
            and not any(r.fields.get(name) in (True, "true") for name in profile.read_only_when)]
    live.sort(key=lambda r: (r.object != primary, r.remote_id))
    return live[0] if live else None


def _owner(recipient: str, profile: SystemProfile, world: World) -> tuple[str | None, str]:
    """The recipient's id as this system's task owner, or why there is none."""
    if profile.crm is not None:
        user = world.users.by_id.get(recipient)
        if user is None:
            return None, (f"{recipient} is not a user of {profile.label} (a queue, or a user "
                          "who no longer exists): a task needs a user as its owner")
        if not user.active:
            return None, f"{user.name or recipient} is an inactive {profile.label} user"
        return user.id, ""
    owner = world.owner_for.get(profile.system, {}).get(recipient)
    if owner is None:
        return None, (f"{recipient} has no {profile.label} owner (matched by e-mail): "
                      f"give the user an owner in {profile.label}")
    return owner, ""


def _fields(task: TaskWanted, plan: PersonPlan, spec: TaskSpec, profile: SystemProfile,
            record: MirrorRow, owner: str, ctx: TaskContext, now: datetime) -> dict[str, object]:
    link = ctx.record_url(record.system, record.object, record.remote_id)
    body = "\n".join([*task.lines, f"Record: {link or f'{record.object} {record.remote_id}'}"])
    due = ctx.today(now).isoformat() if spec.due_is_date else profile.wire(now)
    fields: dict[str, object] = {
        # a subject is one line: remote text (a company name) may hold line breaks
        spec.subject: _clip(" ".join(task.subject.split()), SUBJECT_CHARS),
        spec.body: _clip(body, BODY_CHARS),
        spec.due: due, spec.owner: owner,
        spec.priority: spec.priority_values["high" if task.high_priority else "normal"]}
    if spec.status is not None and spec.status_open is not None:
        fields[spec.status] = spec.status_open
    if spec.who is not None:
        fields[spec.who] = record.remote_id
    else:
        fields["__associate"] = {spec.association: record.remote_id}
    if spec.key_field is not None:
        fields[spec.key_field] = task.key
    fields["__key"] = task.key
    return fields


def _bounded(recipient: str | None) -> str | None:
    """A recipient id for the 64-character column (an owner id is remote data)."""
    return recipient[:64] if recipient is not None else None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def who(plan: PersonPlan) -> str:
    """How a task names the person: their name, else e-mail, else the person id."""
    values = plan.profile
    name = " ".join(str(values[k]) for k in ("first_name", "last_name") if values.get(k))
    label = name or str(values.get("email") or plan.email or f"person {plan.person_id}")
    company = values.get("company")
    return f"{label} ({company})" if company else label
