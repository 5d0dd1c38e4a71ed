"""What the reports read from the state DB, as plain facts.

The reports are read-only views over tables the pipeline writes (the mirror, person links,
decisions, activities, stage history, SLA timers, handoff tasks, feedback, runs, outbox).
The queries live here, in one place, so the report functions stay pure: a `ReportSource`
loads each kind of fact once (on first use) and the reports compute from the facts.
Which system is which never appears here: the registered profiles say which field holds a
record's creation time and which system holds the users; the mapping files say which field
is the lead source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy import func, select

from connectors.profile import SystemProfile
from connectors.registry import profile_of, registered
from state import models as m
from state.common import IN_LIST
from state.store import StateStore
from syncagent.engine.loader import Rules
from syncagent.engine.mapping import CompiledField

T = TypeVar("T")
SOURCE_FIELD = "lead_source"   # the canonical field (fields.yaml) a lead source is read from


@dataclass(frozen=True, slots=True)
class PersonFacts:
    """One person as the reports see them (stage, owner... from the latest decision)."""

    person_id: int
    created_at: datetime          # the earliest creation time of their records
    source: str | None
    segment: str | None = None
    stage: str | None = None
    owner: str | None = None
    mql_date: datetime | None = None
    record: str | None = None     # "system object id" of the record a rep opens


@dataclass(frozen=True, slots=True)
class StageStep:
    person_id: int
    at: datetime
    from_stage: str | None
    to_stage: str
    cause: str
    actor: str | None


@dataclass(frozen=True, slots=True)
class TimerFact:
    person_id: int
    kind: str
    started_at: datetime
    due_at: datetime
    status: str
    recipient: str | None


@dataclass(frozen=True, slots=True)
class FeedbackFact:
    person_id: int
    at: datetime
    outcome: str
    reason: str | None
    lead_source: str | None
    owner: str | None


@dataclass(frozen=True, slots=True)
class ActivityFact:
    person_id: int
    kind: str
    occurred_at: datetime
    campaign: str | None


@dataclass(frozen=True, slots=True)
class _Held:
    """A mirror row in the shape `engine.mapping.map_person` reads."""

    system: str
    object: str
    fields: dict[str, Any]
    modstamp: datetime
    deleted: bool = False


class ReportSource:
    """The facts of one state DB, each loaded on first use (a report reads only its own)."""

    def __init__(self, store: StateStore, rules: Rules | None = None) -> None:
        self.store = store
        self.rules = rules
        self._source_field = _field_named(rules, SOURCE_FIELD)

    @cached_property
    def people(self) -> dict[int, PersonFacts]:
        with self.store.sessions.read() as session:
            first_seen = dict(session.execute(select(m.Person.id, m.Person.created_at)).all())
            decisions = {d.person_id: d for d in session.execute(select(
                m.Decision.person_id, m.Decision.segment, m.Decision.stage, m.Decision.owner,
                m.Decision.mql_date))}
            records = session.execute(
                select(m.PersonLink.person_id, m.MirrorRecord.system, m.MirrorRecord.object,
                       m.MirrorRecord.remote_id, m.MirrorRecord.fields,
                       m.MirrorRecord.modstamp, m.MirrorRecord.last_seen_at,
                       m.MirrorRecord.deleted)
                .join(m.MirrorRecord, (m.MirrorRecord.system == m.PersonLink.system)
                      & (m.MirrorRecord.object == m.PersonLink.object)
                      & (m.MirrorRecord.remote_id == m.PersonLink.remote_id)))
            held: dict[int, list[tuple[_Held, str]]] = {}
            for row in records:
                record = _Held(row.system, row.object, row.fields or {},
                               row.modstamp or row.last_seen_at, bool(row.deleted))
                held.setdefault(row.person_id, []).append((record, row.remote_id))
        return {pid: self._person(pid, seen, decisions.get(pid), held.get(pid, []))
                for pid, seen in first_seen.items()}

    def _person(self, pid: int, first_seen: datetime, decision: Any,
                records: list[tuple[_Held, str]]) -> PersonFacts:
        alive = [r for r, _ in records if not r.deleted]
        created = [c for c in (_created_at(r) for r in alive) if c is not None]
        return PersonFacts(
            pid, min(created, default=first_seen), _canonical_value(self._source_field, alive),
            segment=decision.segment if decision else None,
            stage=decision.stage if decision else None,
            owner=decision.owner if decision else None,
            mql_date=decision.mql_date if decision else None,
            record=_record_link(records))

    @cached_property
    def history(self) -> dict[int, list[StageStep]]:
        """Each person's stage steps, oldest first."""
        query = select(m.StageHistory.person_id, m.StageHistory.at, m.StageHistory.from_stage,
                       m.StageHistory.to_stage, m.StageHistory.cause, m.StageHistory.actor) \
            .order_by(m.StageHistory.person_id, m.StageHistory.at, m.StageHistory.id)
        out: dict[int, list[StageStep]] = {}
        with self.store.sessions.read() as session:
            for row in session.execute(query):
                out.setdefault(row.person_id, []).append(StageStep(*row))
        return out

    @cached_property
    def timers(self) -> list[TimerFact]:
        t = m.SlaTimerRow
        return self._rows(TimerFact, t.person_id, t.kind, t.started_at, t.due_at, t.status,
                          t.recipient)

    @cached_property
    def feedback(self) -> list[FeedbackFact]:
        f = m.Feedback
        return self._rows(FeedbackFact, f.person_id, f.at, f.outcome, f.reason, f.lead_source,
                          f.owner)

    def _rows(self, make: Callable[..., T], *columns: Any) -> list[T]:
        """Every row of ``columns``, each made into a fact by ``make``."""
        with self.store.sessions.read() as session:
            return [make(*row) for row in session.execute(select(*columns))]

    def activities(self, kinds: Iterable[str]) -> list[ActivityFact]:
        """The matched activities of these kinds (an activity of no person is left out)."""
        query = select(m.Activity.person_id, m.Activity.kind, m.Activity.occurred_at,
                       m.Activity.details).where(m.Activity.kind.in_(list(kinds)),
                                                 m.Activity.person_id.is_not(None))
        with self.store.sessions.read() as session:
            return [ActivityFact(row.person_id, row.kind, row.occurred_at,
                                 _text((row.details or {}).get("campaign")))
                    for row in session.execute(query)]

    def routing_rules(self, person_ids: Iterable[int]) -> dict[int, str]:
        """person id -> the routing rule (pool, territory) that chose their owner, where one
        did (the decision's reasons say)."""
        ids = list(person_ids)
        out: dict[int, str] = {}
        with self.store.sessions.read() as session:
            for start in range(0, len(ids), IN_LIST):
                query = select(m.Decision.person_id, m.Decision.reasons) \
                    .where(m.Decision.person_id.in_(ids[start:start + IN_LIST]))
                for pid, reasons in session.execute(query):
                    rule = ((reasons or {}).get("owner") or {}).get("rule")
                    if rule:
                        out[pid] = str(rule)
        return out

    def names(self, object_name: str, name_field: str) -> dict[str, str]:
        """remote id -> name, for the mirror's records of ``object_name`` (any system)."""
        query = select(m.MirrorRecord.remote_id, m.MirrorRecord.fields) \
            .where(m.MirrorRecord.object == object_name)
        with self.store.sessions.read() as session:
            return {rid: str((fields or {}).get(name_field) or rid)
                    for rid, fields in session.execute(query)}

    @cached_property
    def users(self) -> dict[str, str]:
        """The CRM's users: id -> name."""
        crm = crm_profile()
        if crm is None or crm.crm is None:
            return {}
        return self.names(crm.crm.users.object, crm.crm.users.name)

    def runs(self, since: datetime, until: datetime) -> list[m.Run]:
        query = select(m.Run).where(m.Run.started_at >= since, m.Run.started_at < until) \
            .order_by(m.Run.started_at)
        with self.store.sessions.read() as session:
            return list(session.scalars(query))

    def dead_letters_by_code(self) -> dict[str, int]:
        return self._count_by(m.OutboxRow.error_code, m.OutboxRow.status == "dead")

    def open_quality_items(self) -> dict[str, int]:
        return self._count_by(m.DataQualityItem.kind, m.DataQualityItem.resolved.is_(False))

    def _count_by(self, column: Any, where: Any) -> dict[str, int]:
        """Rows where ``where`` holds, counted by ``column``'s value ("unknown" for none)."""
        query = select(column, func.count()).where(where).group_by(column)
        with self.store.sessions.read() as session:
            return {value or "unknown": int(n) for value, n in session.execute(query)}


def crm_profile() -> SystemProfile | None:
    """The system reps work in (its profile has ``crm``)."""
    return next((p for p in registered().values() if p.crm is not None), None)


def _field_named(rules: Rules | None, name: str) -> CompiledField | None:
    if rules is None:
        return None
    return next((f for f in rules.compiled.fields if f.name == name), None)


def _canonical_value(spec: CompiledField | None, records: list[_Held]) -> str | None:
    """The field's value in its canonical spelling: from the system its sync rule prefers,
    else from any other (a report wants the lead source of a person the rule's system has not
    seen yet too), the newest record first; blank counts as none."""
    if spec is None:
        return None
    ordered = sorted(records, key=lambda r: (r.system != spec.source, -r.modstamp.timestamp()))
    for record in ordered:
        name = spec.remote_name(record.system, record.object)
        raw = record.fields.get(name) if name else None
        if raw is None or str(raw).strip() == "":
            continue
        return spec.to_canonical.get(record.system, {}).get(str(raw).casefold(), str(raw))
    return None


def _created_at(record: _Held) -> datetime | None:
    profile = profile_of(record.system)
    if profile is None or profile.created_field is None:
        return None
    return parse_moment(record.fields.get(profile.created_field))


def parse_moment(value: Any) -> datetime | None:
    """An ISO timestamp or epoch milliseconds (as the systems write them) -> aware UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip() if value is not None else ""
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _record_link(records: list[tuple[_Held, str]]) -> str | None:
    """The record a rep would open: the CRM's primary object first, then any person record."""
    crm = crm_profile()
    alive = [(r, rid) for r, rid in records if not r.deleted]

    def rank(item: tuple[_Held, str]) -> tuple[bool, bool]:
        record = item[0]
        in_crm = crm is not None and record.system == crm.system
        primary = in_crm and crm is not None and crm.crm is not None \
            and record.object == crm.crm.primary_object
        return (not in_crm, not primary)

    if not alive:
        return None
    record, rid = min(alive, key=rank)
    return f"{record.system} {record.object} {rid}"


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
