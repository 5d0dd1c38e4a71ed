"""The rows the report queries return (`state.reports`), and the selections of persons they
take: plain frozen dataclasses, so that `syncagent.reports` computes from values, not ORM
objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class RecordRow:
    """A live (not deleted) record of a person, with the one field reports read from it."""

    person_id: int
    system: str
    object: str
    remote_id: str
    created_at: datetime | None   # when its system created it
    source: Any                   # the lead-source field's raw value (None: absent)


@dataclass(frozen=True, slots=True)
class PersonRow:
    """A person, their latest decision's parts and their live records."""

    person_id: int
    first_seen: datetime
    segment: str | None
    stage: str | None
    owner: str | None
    mql_date: datetime | None
    records: tuple[RecordRow, ...]


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
class LatencyFigures:
    """Change-to-visible latency of one system's writes done on one day."""

    day: date
    system: str
    writes: int
    p50_seconds: float
    p95_seconds: float


# --------------------------------------------------------------------------- selections
@dataclass(frozen=True)
class Every:
    """Every person."""


@dataclass(frozen=True)
class CreatedBetween:
    """Persons created in ``[since, until)``: the earliest creation time of their live
    records, or (none saying) when the agent first saw them."""

    since: datetime
    until: datetime


@dataclass(frozen=True)
class InStages:
    """Persons whose latest decision is in one of ``stages`` (with an owner, if ``owned``)."""

    stages: tuple[str, ...]
    owned: bool = False


@dataclass(frozen=True)
class Ids:
    ids: tuple[int, ...]


Selection = Every | CreatedBetween | InStages | Ids
