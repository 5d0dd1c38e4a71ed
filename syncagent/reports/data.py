"""What the reports read from the state DB, as plain facts.

The queries live in the state layer (`state/reports.py`): each asks for only what a report
needs (the persons of a period, their steps, one field of a record). `ReportSource` turns
those rows into facts with the rules' help (a person's lead source in its canonical
spelling, their creation time, the record a rep opens), so the reports stay pure
computations. Which system is which never appears here: the registered profiles say which
system holds the users; the mapping files say which field is the lead source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from connectors.profile import SystemProfile, parse_moment
from connectors.registry import registered
from state.report_rows import (
    ActivityFact,
    CreatedBetween,
    Every,
    FeedbackFact,
    Ids,
    InStages,
    LatencyFigures,
    PersonRow,
    RecordRow,
    Selection,
    StageStep,
    TimerFact,
)
from state.store import StateStore
from syncagent.engine.loader import Rules
from syncagent.engine.mapping import CompiledField

if TYPE_CHECKING:
    from state import models as m
    from syncagent.reports.model import Period

SOURCE_FIELD = "lead_source"   # the canonical field (fields.yaml) a lead source is read from
Persons = Mapping[int, Any] | Iterable[int] | Selection   # whose facts a read covers

__all__ = ["ActivityFact", "FeedbackFact", "InStages", "PersonFacts", "ReportSource",
           "StageStep", "TimerFact", "crm_profile", "parse_moment"]


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


def _selection(persons: Persons) -> Selection:
    if isinstance(persons, Every | CreatedBetween | InStages | Ids):
        return persons
    return Ids(tuple(persons))


class ReportSource:
    """One state DB's facts for the reports. Persons read once are kept (a page that runs
    several reports reads a period's persons once)."""

    def __init__(self, store: StateStore, rules: Rules | None = None) -> None:
        self.store = store
        self.rules = rules
        self._source_field = _field_named(rules, SOURCE_FIELD)
        self._cohorts: dict[tuple[datetime, datetime], dict[int, PersonFacts]] = {}
        self._bare_cohorts: dict[tuple[datetime, datetime], dict[int, PersonFacts]] = {}
        self._known: dict[int, PersonFacts] = {}

    # ----------------------------------------------------------------- persons
    def cohort(self, period: Period, records: bool = True) -> dict[int, PersonFacts]:
        """The persons created in the period (see `state.reports.CreatedBetween`); without
        ``records`` their lead sources and record links are not read (None)."""
        key = (period.since, period.until)
        if key in self._cohorts:  # read with records: what is asked and more
            return self._cohorts[key]
        selection = CreatedBetween(period.since, period.until)
        if not records:
            if key not in self._bare_cohorts:
                self._bare_cohorts[key] = self._read(selection, records=False)
            return self._bare_cohorts[key]
        self._cohorts[key] = self._read(selection)
        return self._cohorts[key]

    def persons(self, ids: Iterable[int], records: bool = True) -> dict[int, PersonFacts]:
        """These persons' facts (an id the DB does not hold is left out). Without
        ``records``, their lead sources and record links are not read (None)."""
        wanted = set(ids)
        if not records:
            return self._read(Ids(tuple(wanted)), records=False)
        missing = wanted - self._known.keys()
        if missing:
            self._read(Ids(tuple(missing)))
        return {pid: self._known[pid] for pid in wanted if pid in self._known}

    def in_stages(self, selection: InStages, sources: bool = True) -> list[PersonFacts]:
        """The persons whose latest decision is in one of the stages (and has an owner, if
        the selection says so), by id; without ``sources``, their lead sources are not read
        (``source`` is None)."""
        return list(self._read(selection, sources=sources).values())

    @property
    def people(self) -> dict[int, PersonFacts]:
        """Every person (a whole-DB read: the reports ask for a period's or a stage's)."""
        return self._read(Every())

    def _read(self, selection: Selection, records: bool = True, sources: bool = True
              ) -> dict[int, PersonFacts]:
        spec = self._source_field
        rows = self.store.reports.persons(selection, spec.names if spec and sources else {},
                                          prefer=spec.source if spec else None,
                                          records=records)
        crm = crm_profile()
        facts = {row.person_id: self._facts(row, crm) for row in rows}
        if records and sources:
            self._known.update(facts)
        return facts

    def _facts(self, row: PersonRow, crm: SystemProfile | None) -> PersonFacts:
        created = [r.created_at for r in row.records if r.created_at is not None]
        return PersonFacts(row.person_id, min(created, default=row.first_seen),
                           _canonical_value(self._source_field, row.records),
                           segment=row.segment, stage=row.stage, owner=row.owner,
                           mql_date=row.mql_date, record=_record_link(row.records, crm))

    def routing_rules(self, persons: Persons) -> dict[int, str]:
        """person id -> the routing rule (pool, territory) that chose their owner, where one
        did (the decision's reasons say)."""
        return self.store.reports.routing_rules(_selection(persons))

    # ----------------------------------------------------------------- what happened to them
    def history_of(self, persons: Persons, into: Iterable[str] | None = None
                   ) -> dict[int, list[StageStep]]:
        """Each person's stage steps (only those into one of ``into``, if given), oldest
        first."""
        return self.store.reports.steps_of(_selection(persons),
                                           None if into is None else list(into))

    def steps_between(self, period: Period, into: Iterable[str]) -> list[StageStep]:
        """The steps into one of ``into`` taken in the period."""
        return self.store.reports.steps_between(period.since, period.until, list(into))

    def unstaged_mqls(self, period: Period) -> list[tuple[int, datetime]]:
        """(person, MQL date in the period) of persons with no stage history at all."""
        return self.store.reports.unstaged_mqls(period.since, period.until)

    def timers_of(self, persons: Persons, status: str | None = None,
                  due_by: datetime | None = None) -> list[TimerFact]:
        """Their SLA timer steps (of ``status``; with ``due_by``: due by then, not
        cancelled)."""
        return self.store.reports.timers_of(_selection(persons), status, due_by)

    def feedback_of(self, persons: Persons, outcome: str | None = None) -> list[FeedbackFact]:
        return self.store.reports.feedback_of(_selection(persons), outcome)

    def activities_between(self, kinds: Iterable[str], period: Period) -> list[ActivityFact]:
        """The matched activities of these kinds in the period."""
        return self.store.reports.activities_between(list(kinds), period.since, period.until)

    def activities_of(self, persons: Persons, kinds: Iterable[str]) -> list[ActivityFact]:
        return self.store.reports.activities_of(_selection(persons), list(kinds))

    def last_activity(self, persons: Persons, kinds: Iterable[str]) -> dict[int, datetime]:
        """person id -> their latest activity of these kinds."""
        return self.store.reports.last_activity(_selection(persons), list(kinds))

    # ----------------------------------------------------------------- names
    def names(self, object_name: str, name_field: str) -> dict[str, str]:
        """remote id -> name, for the mirror's records of ``object_name`` (any system)."""
        return self.store.reports.names(object_name, name_field)

    @cached_property
    def users(self) -> dict[str, str]:
        """The CRM's users: id -> name."""
        crm = crm_profile()
        if crm is None or crm.crm is None:
            return {}
        return self.names(crm.crm.users.object, crm.crm.users.name)

    # ----------------------------------------------------------------- the agent's own work
    def runs(self, since: datetime, until: datetime) -> list[m.Run]:
        return self.store.reports.runs(since, until)

    def dead_letters_by_code(self) -> dict[str, int]:
        return self.store.reports.dead_letters_by_code()

    def open_quality_items(self) -> dict[str, int]:
        return self.store.reports.open_quality_items()

    def latency(self, since: datetime, until: datetime) -> list[LatencyFigures]:
        return self.store.reports.latency(since, until)


def crm_profile() -> SystemProfile | None:
    """The system reps work in (its profile has ``crm``)."""
    return next((p for p in registered().values() if p.crm is not None), None)


def _field_named(rules: Rules | None, name: str) -> CompiledField | None:
    if rules is None:
        return None
    return next((f for f in rules.compiled.fields if f.name == name), None)


def _canonical_value(spec: CompiledField | None, records: Sequence[RecordRow]) -> str | None:
    """The field's value in its canonical spelling: from the system its sync rule prefers,
    else from any other (a report wants the lead source of a person the rule's system has not
    seen yet too), the newest record first (the order the records come in); blank counts as
    none."""
    if spec is None:
        return None
    for record in records:
        raw = record.source
        if raw is None or str(raw).strip() == "":
            continue
        return spec.to_canonical.get(record.system, {}).get(str(raw).casefold(), str(raw))
    return None


def _record_link(records: Sequence[RecordRow], crm: SystemProfile | None) -> str | None:
    """The record a rep would open: the CRM's primary object first, then any person record."""

    def rank(record: RecordRow) -> tuple[bool, bool]:
        in_crm = crm is not None and record.system == crm.system
        primary = in_crm and crm is not None and crm.crm is not None \
            and record.object == crm.crm.primary_object
        return (not in_crm, not primary)

    if not records:
        return None
    record = min(records, key=rank)
    return f"{record.system} {record.object} {record.remote_id}"
