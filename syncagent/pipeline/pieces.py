"""A chunk's evaluation person by person: what each person adds to the chunk's commit.

The in-process path (pipeline/cycle.py) plans and derives the handoff of a whole chunk at
once. The worker pool (pipeline/workers.py) cannot: a person whose evaluation read the
routing rotation may have to be evaluated again in the main process, with the rotation as
the persons before it left it. So each person's share (decision, due time, planned writes,
data-quality items, handoff rows) is kept apart as a `Piece`, and `merge` lays the pieces of a
chunk end to end in the order the in-process path makes its lists: the same rows, in the same
order, reach the same commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from connectors.base import Connector, FieldCatalog
from state.flags import Flag
from state.store import NewOutboxRow, StateStore
from syncagent.pipeline import quality
from syncagent.pipeline.decide import Evaluated
from syncagent.pipeline.handoff import (
    NO_HANDOFF,
    Handoff,
    HandoffParts,
    cancel_gone,
    derive_person,
    join,
    stored_for,
    taken,
)
from syncagent.pipeline.match import AMBIGUOUS
from syncagent.pipeline.plan import PersonPlan, PlanContext, creating, plan_person_noting
from syncagent.pipeline.quarantine import Poison
from syncagent.pipeline.records import is_person
from syncagent.pipeline.tasks import TaskContext


@dataclass
class Piece:
    """One person's share of a chunk's commit (``decision`` None: not evaluated, because
    its records are all deleted or the rules failed on them). Sent pickled from the worker:
    what is empty is (), and it pickles as its fields in order (`__reduce__`), not as a dict
    of them (~0.5 µs a person less to pickle and unpickle)."""

    due: datetime | None
    decision: dict[str, Any] | None = None
    rows: Sequence[NewOutboxRow] = ()       # planned writes
    flags: Sequence[Flag] = ()              # values no translation knows
    poison: Sequence[Poison] = ()
    handoff: HandoffParts = NO_HANDOFF      # its share of the chunk's `Handoff`
    gone: bool = False

    def __reduce__(self) -> tuple[type[Piece], tuple[Any, ...]]:
        return (Piece, (self.due, self.decision, self.rows, self.flags, self.poison,
                        self.handoff, self.gone))


@dataclass
class Merged:
    """A chunk's commit, as the in-process path builds it."""

    rows: list[NewOutboxRow]          # planned writes, then the tasks' rows
    decisions: list[dict[str, Any]]
    due: dict[int, datetime | None]
    poison: list[Poison]
    handoff: Handoff
    flags: list[Flag]                 # untranslatable values, then the handoff's items
    planned: int                      # of ``rows``, the planned writes (the rest are tasks)


def for_plans(store: StateStore, context: PlanContext,
              plans: Sequence[PersonPlan]) -> PlanContext:
    """``context`` with what these persons' e-mails need: the e-mails each system already
    holds a live person record for, and those flagged ambiguous, read for these e-mails only
    (indexed look-ups; a million-person org's e-mails are never all in memory), and only for
    the persons a system would create a record for (`creating`): planning reads no other
    person's e-mail (~1 in 5 of a rescore's persons)."""
    found = {plan.person_id: (plan, creating(plan, context)) for plan in plans}
    emails = {plan.email for plan, systems in found.values() if systems and plan.email}
    by_system: dict[str, set[str]] = defaultdict(set)
    for system, object_name, _rid, email in store.mirror.email_holders(emails):
        if is_person(system, object_name):
            by_system[system].add(email)
    flagged = store.flags.open_keys(AMBIGUOUS + email for email in emails)
    return replace(context,
                   known_emails={system: frozenset(found) for system, found in by_system.items()},
                   ambiguous_emails=frozenset(key.removeprefix(AMBIGUOUS) for key in flagged),
                   creating=found)


def known_fields(connectors: Mapping[str, Connector]
                 ) -> dict[tuple[str, str], frozenset[str] | None]:
    """The fields each person object has, where its connector can tell."""
    return {(system, person.object): connector.known_fields(person.object)
            for system, connector in connectors.items() if isinstance(connector, FieldCatalog)
            for person in connector.profile.person_objects}


def pieces_of(store: StateStore, chunk: Evaluated, context: PlanContext, tasks: TaskContext,
              mappings_dir: str, now: datetime) -> dict[int, Piece]:
    """Plan and derive the handoff of an evaluated chunk, person by person. What is read
    (e-mails held, stored timers and task keys) is read once for the chunk."""
    planning = for_plans(store, context, chunk.plans)
    stored = stored_for(store, chunk)
    out: dict[int, Piece] = {}
    scratch = Handoff()   # one for the chunk: each person's share is taken out of it
    for plan, decision in zip(chunk.plans, chunk.decisions, strict=True):
        pid = plan.person_id
        rows, notes = plan_person_noting(plan, planning)
        derive_person(plan, stored, tasks, now, scratch)
        out[pid] = Piece(chunk.due[pid], decision, rows or (),
                         quality.untranslatable_flags(notes, mappings_dir) if notes else (),
                         chunk.poison_of.get(pid) or (), taken(scratch))
    for pid in chunk.gone:
        cancel_gone(pid, stored, scratch)
        out[pid] = Piece(None, handoff=taken(scratch), gone=True)
    for pid, due in chunk.due.items():   # the rules failed on its data: poison only
        if pid not in out:
            out[pid] = Piece(due, poison=chunk.poison_of.get(pid) or ())
    return out


def merge(person_ids: Sequence[int], pieces: Mapping[int, Piece]) -> Merged:
    """The chunk's pieces end to end, in the order of ``person_ids`` (the in-process path's
    order: each list person by person; the handoff's cancellations of persons whose records
    are all gone come after everyone else's, as `derive` makes them)."""
    ordered = [pieces[pid] for pid in person_ids]
    evaluated = [p for p in ordered if p.decision is not None]
    handoff = Handoff()
    for piece in [*(p for p in ordered if not p.gone), *(p for p in ordered if p.gone)]:
        if piece.handoff is not NO_HANDOFF:   # (one unpickled is another object: joined)
            join(piece.handoff, handoff)
    planned = [row for p in evaluated for row in p.rows]
    return Merged(planned + handoff.outbox,
                  [p.decision for p in evaluated if p.decision is not None],
                  {pid: pieces[pid].due for pid in person_ids},
                  [found for p in ordered for found in p.poison], handoff,
                  [flag for p in evaluated for flag in p.flags] + handoff.flags, len(planned))
