"""Reading a person's stage history the way the funnel reports count it.

A person *reaches* a funnel stage when a step takes them to it or past it from below: a lead
that jumps straight to SQL has passed MQL and SAL too. The side stages (Recycled, Nurture,
Disqualified) are off the funnel: stepping into one reaches nothing, and stepping out of one
starts from the Lead level, so a recycled lead that becomes an MQL again is a new MQL.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime

from syncagent.engine.model import STAGE_RANK
from syncagent.reports.data import PersonFacts, StageStep

FUNNEL = ("Inquiry", "Lead", "MQL", "SAL", "SQL", "Opportunity", "Customer")
SIDE = ("Recycled", "Nurture", "Disqualified")
OPEN_WITH_SALES: tuple[str, ...] = ("MQL", "SAL")


def _rank(stage: str | None) -> int:
    return STAGE_RANK.get(stage or "", -1)


def entries(steps: Sequence[StageStep], stage: str) -> list[datetime]:
    """When the person reached ``stage`` (see the module's docstring), oldest first."""
    target = STAGE_RANK[stage]
    return [s.at for s in steps
            if s.to_stage not in SIDE and _rank(s.to_stage) >= target > _rank(s.from_stage)]


@functools.cache
def _passed(from_stage: str | None, to_stage: str) -> frozenset[str]:
    """The funnel stages a step from ``from_stage`` to ``to_stage`` reaches."""
    if to_stage in SIDE:
        return frozenset()
    return frozenset(stage for stage in FUNNEL
                     if _rank(to_stage) >= STAGE_RANK[stage] > _rank(from_stage))


def reached_by(steps: Sequence[StageStep]) -> frozenset[str]:
    """The funnel stages some step reached (each stage for which `entries` is not empty)."""
    out: frozenset[str] = frozenset()
    for step in steps:
        out |= _passed(step.from_stage, step.to_stage)
    return out


def first_reach(person: PersonFacts, steps: Sequence[StageStep], stage: str
                ) -> datetime | None:
    """The first time the person reached ``stage``; a person whose latest decision is at or
    past it, with no step saying when, reached it at their MQL date or creation (a decision
    made before stage history was kept)."""
    reached = entries(steps, stage)
    if reached:
        return reached[0]
    if person.stage in SIDE or _rank(person.stage) < STAGE_RANK[stage]:
        return None
    if stage == "MQL" and person.mql_date is not None:
        return person.mql_date
    return person.created_at if _rank(stage) <= STAGE_RANK["Lead"] else None


def current_entry(person: PersonFacts, steps: Sequence[StageStep]) -> datetime | None:
    """When the person entered the stage their latest decision has."""
    into = [s.at for s in steps if s.to_stage == person.stage]
    if into:
        return into[-1]
    return person.mql_date if person.stage == "MQL" else None
