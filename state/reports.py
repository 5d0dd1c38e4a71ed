"""What the reports read: the queries behind leads over time, the funnel, sources, campaigns,
clean your room, MQL to SAL and sync health.

The reports are read-only views over tables the pipeline writes. Each query here asks the
database for only the rows a report needs (the persons of a period, their steps, one JSON
field out of a record) and returns plain rows; `syncagent.reports` computes from them. Which
persons a query covers is a `Selection`: those created in a period (by the indexed creation
time of their records), those in some stages, or a list of ids. Nothing here names a system:
the caller says which record field holds the lead source.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    and_,
    any_,
    case,
    exists,
    func,
    literal,
    null,
    select,
    true,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from state import models as m
from state.common import IN_LIST, Sessions, chunks
from state.models import UTCDateTime
from state.report_rows import (
    ActivityFact,
    CreatedBetween,
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


def _when(moment: datetime) -> ColumnElement[Any]:
    return literal(moment, UTCDateTime())


def _record_join() -> ColumnElement[bool]:
    link, rec = m.PersonLink, m.MirrorRecord
    return and_(rec.system == link.system, rec.object == link.object,
                rec.remote_id == link.remote_id)


def _selected(selection: Selection) -> Select[Any] | None:
    """A SELECT of the chosen person ids (None: every person; Ids are chunked instead)."""
    if isinstance(selection, CreatedBetween):
        return _created_between(selection.since, selection.until)
    if isinstance(selection, InStages):
        d = m.Decision
        owned = and_(d.owner.is_not(None), d.owner != "") if selection.owned else true()
        return select(d.person_id).where(d.stage.in_(selection.stages), owned)
    return None


def _created_between(since: datetime, until: datetime) -> Select[Any]:
    """Persons whose earliest live record was created in the period (found by the index on
    records' creation time: a record created in it, and none of theirs earlier), and persons
    with no creation time on any live record whom the agent first saw in it."""
    link, rec, p = m.PersonLink, m.MirrorRecord, m.Person
    other, theirs = aliased(m.PersonLink), aliased(m.MirrorRecord)

    def records_of(person: Any, *where: ColumnElement[bool]) -> Any:
        return exists().where(other.person_id == person, theirs.system == other.system,
                              theirs.object == other.object,
                              theirs.remote_id == other.remote_id,
                              theirs.deleted.is_(False), *where)

    by_records = (select(link.person_id).join(rec, _record_join())
                  .where(rec.created_at >= _when(since), rec.created_at < _when(until),
                         rec.deleted.is_(False),
                         ~records_of(link.person_id, theirs.created_at < _when(since))))
    first_seen = select(p.id).where(p.created_at >= _when(since), p.created_at < _when(until),
                                    ~records_of(p.id, theirs.created_at.is_not(None)))
    return select(union(by_records, first_seen).subquery().c[0])


def _with_records(query: Any, source_fields: Mapping[tuple[str, str], str],
                  prefer: str | None) -> Select[Any]:
    """``query`` of persons joined to their live records (a person with none: one row of
    nulls), the records of ``prefer`` first, then the newest first."""
    link, rec = m.PersonLink, m.MirrorRecord
    return (query.add_columns(rec.system, rec.object, rec.remote_id, rec.created_at,
                              _field_of(source_fields))
            .outerjoin(link, link.person_id == m.Person.id)
            .outerjoin(rec, and_(_record_join(), rec.deleted.is_(False)))
            .order_by(m.Person.id, case((rec.system == prefer, 0), else_=1),
                      func.coalesce(rec.modstamp, rec.last_seen_at).desc()))


def _filters(column: Any, selection: Selection, postgres: bool) -> Iterator[ColumnElement[bool]]:
    """WHERE clauses that together cover the selection: ids go as one array on Postgres
    (``= ANY``: far cheaper there than a long IN list), in chunks on SQLite (its bound
    parameter limit)."""
    if isinstance(selection, Ids):
        ids = sorted(set(selection.ids))
        if postgres:
            yield column == any_(literal(ids, ARRAY(BigInteger())))
            return
        for chunk in chunks(ids, IN_LIST):
            yield column.in_(chunk)
        return
    chosen = _selected(selection)
    yield true() if chosen is None else column.in_(chosen.scalar_subquery())


@dataclass(frozen=True)
class _ActivityPerson:
    """One way an activity belongs to a person. The pipeline stores an activity with the
    (system, object, id) of the record it points at and leaves ``person_id`` empty; the
    person comes from that record's link. A stored ``person_id`` (imports, older rows) wins."""

    linked: bool

    @property
    def column(self) -> Any:
        return m.PersonLink.person_id if self.linked else m.Activity.person_id

    def of_kinds(self, kinds: Sequence[str]) -> ColumnElement[bool]:
        """The kind filter of a query by persons. Through the links it is kept off the kind
        index, so the plan starts from the selected persons' links (a few rows each), not
        from every activity of those kinds."""
        kind = func.coalesce(m.Activity.kind, "") if self.linked else m.Activity.kind
        return kind.in_(list(kinds))

    def select(self, *columns: Any) -> Any:
        a, link = m.Activity, m.PersonLink
        if not self.linked:
            return select(*columns).where(a.person_id.is_not(None))
        on = and_(link.system == a.system, link.object == a.ref_object,
                  link.remote_id == a.ref_id)
        # "no stored person id" written so that no planner takes it for an index lookup: on
        # SQLite ``person_id IS NULL`` led the plan through ix_activities_person, a scan of
        # every activity, where starting from the selected persons' links is cheap
        unlinked = func.coalesce(a.person_id, 0) == 0
        return select(*columns).select_from(a).join(link, on).where(unlinked)


_ACTIVITY_PERSON = (_ActivityPerson(linked=False), _ActivityPerson(linked=True))


class ReportStore:
    """The reports' reads, one session per call."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions
        self._postgres = sessions.dialect == "postgresql"

    # ----------------------------------------------------------------- persons
    def persons(self, selection: Selection,
                source_fields: Mapping[tuple[str, str], str] | None = None,
                prefer: str | None = None, records: bool = True) -> list[PersonRow]:
        """The selected persons with their decisions and (with ``records``) live records,
        those of system ``prefer`` first, then the newest first; ``source_fields``: (system,
        casefolded object) -> the record field the lead source is read from. One query: a
        person's row repeats for each of their live records. Without ``records``, a person's
        ``first_seen`` is already their creation time (see `CreatedBetween`)."""
        p, d = m.Person, m.Decision
        decided = (d.segment, d.stage, d.owner, d.mql_date)
        if not records:
            return self._persons_only(selection, decided)
        query = _with_records(select(p.id, p.created_at, *decided)
                              .outerjoin(d, d.person_id == p.id), source_fields or {}, prefer)
        people: dict[int, Any] = {}
        held: dict[int, list[RecordRow]] = {}
        with self._sessions.read() as session:
            for where in _filters(p.id, selection, self._postgres):
                for (pid, seen, segment, stage, owner, mql, system, obj, rid, created,
                     source) in _run(session, query.where(where)):
                    people.setdefault(pid, (seen, segment, stage, owner, mql))
                    if system is not None:
                        held.setdefault(pid, []).append(
                            RecordRow(pid, system, obj, rid, created, source))
        return [PersonRow(pid, seen, segment, stage, owner, mql, tuple(held.get(pid, ())))
                for pid, (seen, segment, stage, owner, mql) in people.items()]

    def _persons_only(self, selection: Selection, decided: tuple[Any, ...]) -> list[PersonRow]:
        p, d, link, rec = m.Person, m.Decision, m.PersonLink, m.MirrorRecord
        query = select(p.id, p.created_at, *decided).outerjoin(d, d.person_id == p.id) \
            .order_by(p.id)
        earliest = (select(link.person_id, func.min(rec.created_at)).join(rec, _record_join())
                    .where(rec.deleted.is_(False)).group_by(link.person_id))
        out: list[PersonRow] = []
        with self._sessions.read() as session:
            for where in _filters(p.id, selection, self._postgres):
                rows = _run(session, query.where(where))
                created = {pid: at for where_linked in _filters(
                               link.person_id, Ids(tuple(row[0] for row in rows)),
                               self._postgres)
                           for pid, at in _run(session, earliest.where(where_linked))}
                out += [PersonRow(pid, created.get(pid) or seen, segment, stage, owner, mql, ())
                        for pid, seen, segment, stage, owner, mql in rows]
        return out

    def routing_rules(self, selection: Selection) -> dict[int, str]:
        """person id -> the routing rule (pool, territory) that chose their owner, where the
        decision's reasons name one."""
        d = m.Decision
        rule = d.reasons[("owner", "rule")].as_string()
        query = select(d.person_id, rule).where(rule.is_not(None))
        with self._sessions.read() as session:
            return {pid: str(value) for where in _filters(d.person_id, selection, self._postgres)
                    for pid, value in _run(session, query.where(where)) if value}

    def unstaged_mqls(self, since: datetime, until: datetime) -> list[tuple[int, datetime]]:
        """(person id, MQL date in the period) of persons with no stage history at all (their
        decision predates it)."""
        d, h = m.Decision, m.StageHistory
        query = select(d.person_id, d.mql_date).where(
            d.mql_date >= _when(since), d.mql_date < _when(until),
            ~exists().where(h.person_id == d.person_id))
        with self._sessions.read() as session:
            return [(pid, at) for pid, at in _run(session, query) if at is not None]

    # ----------------------------------------------------------------- stage history
    def steps_of(self, selection: Selection, into: Collection[str] | None = None
                 ) -> dict[int, list[StageStep]]:
        """Each selected person's stage steps (only those into one of ``into``, if given),
        oldest first."""
        h = m.StageHistory
        query = select(h.person_id, h.at, h.from_stage, h.to_stage, h.cause, h.actor) \
            .order_by(h.person_id, h.at, h.id)
        if into is not None:
            query = query.where(h.to_stage.in_(list(into)))
        out: dict[int, list[StageStep]] = {}
        with self._sessions.read() as session:
            for where in _filters(h.person_id, selection, self._postgres):
                for row in _run(session, query.where(where)):
                    out.setdefault(row.person_id, []).append(StageStep(*row))
        return out

    def steps_between(self, since: datetime, until: datetime,
                      into: Collection[str]) -> list[StageStep]:
        """The steps into one of ``into`` taken in ``[since, until)``, by person and time."""
        h = m.StageHistory
        query = (select(h.person_id, h.at, h.from_stage, h.to_stage, h.cause, h.actor)
                 .where(h.at >= _when(since), h.at < _when(until), h.to_stage.in_(list(into)))
                 .order_by(h.person_id, h.at, h.id))
        with self._sessions.read() as session:
            return [StageStep(*row) for row in _run(session, query)]

    # ----------------------------------------------------------------- handoff
    def timers_of(self, selection: Selection, status: str | None = None,
                  due_by: datetime | None = None) -> list[TimerFact]:
        """The selected persons' SLA timer steps (of ``status`` only, if given; with
        ``due_by``, only steps due by then and not cancelled)."""
        t = m.SlaTimerRow
        query = select(t.person_id, t.kind, t.started_at, t.due_at, t.status, t.recipient)
        if due_by is not None:
            query = query.where(t.due_at <= _when(due_by), t.status != "cancelled")
        with self._sessions.read() as session:
            # status is checked here: in SQL it would tempt SQLite onto the (status, due)
            # index, one scan of every such timer per chunk of persons
            return [TimerFact(*row) for where in _filters(t.person_id, selection, self._postgres)
                    for row in _run(session, query.where(where))
                    if status is None or row.status == status]

    def feedback_of(self, selection: Selection, outcome: str | None = None
                    ) -> list[FeedbackFact]:
        f = m.Feedback
        query = select(f.person_id, f.at, f.outcome, f.reason, f.lead_source, f.owner)
        if outcome is not None:
            query = query.where(f.outcome == outcome)
        with self._sessions.read() as session:
            return [FeedbackFact(*row) for where in _filters(f.person_id, selection, self._postgres)
                    for row in _run(session, query.where(where))]

    # ----------------------------------------------------------------- activities
    def activities_between(self, kinds: Sequence[str], since: datetime, until: datetime
                           ) -> list[ActivityFact]:
        """The matched activities of these kinds in ``[since, until)``."""
        a = m.Activity
        return self._activities(a.occurred_at >= _when(since), a.occurred_at < _when(until),
                                a.kind.in_(list(kinds)))

    def activities_of(self, selection: Selection, kinds: Sequence[str]) -> list[ActivityFact]:
        """The selected persons' activities of these kinds."""
        return [fact for person in _ACTIVITY_PERSON
                for where in _filters(person.column, selection, self._postgres)
                for fact in self._activities(where, person.of_kinds(kinds), only=person)]

    def last_activity(self, selection: Selection, kinds: Sequence[str]) -> dict[int, datetime]:
        """person id -> when the latest of their activities of these kinds happened."""
        a = m.Activity
        latest: dict[int, datetime] = {}
        with self._sessions.read() as session:
            for person in _ACTIVITY_PERSON:
                query = person.select(person.column, func.max(a.occurred_at)) \
                    .where(person.of_kinds(kinds)).group_by(person.column)
                for where in _filters(person.column, selection, self._postgres):
                    for pid, at in _run(session, query.where(where)):
                        if pid is not None and at is not None and (
                                pid not in latest or at > latest[pid]):
                            latest[pid] = at
        return latest

    def _activities(self, *where: ColumnElement[bool],
                    only: _ActivityPerson | None = None) -> list[ActivityFact]:
        a = m.Activity
        campaign = a.details["campaign"].as_string()
        with self._sessions.read() as session:
            return [ActivityFact(pid, kind, at, str(name) if name not in (None, "") else None)
                    for person in ((only,) if only is not None else _ACTIVITY_PERSON)
                    for pid, kind, at, name in _run(session, person.select(
                        person.column, a.kind, a.occurred_at, campaign).where(*where))]


    # ----------------------------------------------------------------- other records
    def names(self, object_name: str, name_field: str) -> dict[str, str]:
        """remote id -> name, for the mirror's records of ``object_name`` (any system)."""
        rec = m.MirrorRecord
        query = select(rec.remote_id, rec.fields[name_field].as_string()) \
            .where(rec.object == object_name)
        with self._sessions.read() as session:
            return {rid: str(name or rid) for rid, name in _run(session, query)}

    # ----------------------------------------------------------------- the agent's own work
    def runs(self, since: datetime, until: datetime) -> list[m.Run]:
        query = select(m.Run).where(m.Run.started_at >= since, m.Run.started_at < until) \
            .order_by(m.Run.started_at)
        with self._sessions.read() as session:
            return list(session.scalars(query))

    def dead_letters_by_code(self) -> dict[str, int]:
        return self._count_by(m.OutboxRow.error_code, m.OutboxRow.status == "dead")

    def open_quality_items(self) -> dict[str, int]:
        return self._count_by(m.DataQualityItem.kind, m.DataQualityItem.resolved.is_(False))

    def _count_by(self, column: Any, where: Any) -> dict[str, int]:
        """Rows where ``where`` holds, counted by ``column``'s value ("unknown" for none)."""
        query = select(column, func.count()).where(where).group_by(column)
        with self._sessions.read() as session:
            return {value or "unknown": int(n) for value, n in _run(session, query)}

    def latency(self, since: datetime, until: datetime) -> list[LatencyFigures]:
        """Per UTC day and system, the writes done in ``[since, until)`` and the median and
        95th percentile of their change-to-visible seconds (nearest rank), computed in SQL."""
        c = m.ChangeLatency
        rank = func.row_number().over(partition_by=(c.day, c.system), order_by=c.seconds)
        count = func.count().over(partition_by=(c.day, c.system))
        ranked = (select(c.day, c.system, c.seconds, rank.label("n"), count.label("total"))
                  .where(c.done_at >= _when(since), c.done_at < _when(until)).subquery())
        # nearest rank: the ceil(q * total)-th smallest, in integer arithmetic
        p50 = (ranked.c.total * 50 + 99) // 100
        p95 = (ranked.c.total * 95 + 99) // 100
        query = (select(ranked.c.day, ranked.c.system, func.max(ranked.c.total),
                        func.max(case((ranked.c.n == p50, ranked.c.seconds), else_=null())),
                        func.max(case((ranked.c.n == p95, ranked.c.seconds), else_=null())))
                 .where((ranked.c.n == p50) | (ranked.c.n == p95))
                 .group_by(ranked.c.day, ranked.c.system)
                 .order_by(ranked.c.day, ranked.c.system))
        with self._sessions.read() as session:
            return [LatencyFigures(day, system, int(total), float(mid), float(high))
                    for day, system, total, mid, high in _run(session, query)]


def _run(session: Session, query: Any) -> Sequence[Any]:
    """Rows of a Core query, fetched at once (through the session's connection: no ORM
    result machinery, and no round trip into the driver per row; both cost more than the
    query itself on a hundred thousand rows)."""
    return session.connection().execute(query).all()


def _field_of(fields: Mapping[tuple[str, str], str]) -> ColumnElement[Any]:
    """The value of the named field of each record (by its system and object), in SQL."""
    rec = m.MirrorRecord
    if not fields:
        return null()
    lowered = func.lower(rec.object)
    return case(*((and_(rec.system == system, lowered == object_name),
                   rec.fields[name].as_string())
                  for (system, object_name), name in sorted(fields.items())), else_=null())
