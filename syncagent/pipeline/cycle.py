"""One cycle: pull -> match -> evaluate -> plan -> push, with its figures in the runs table.

`run_cycle` returns the report that `syncagent sync --once --json` prints; its keys are a
contract that benchmarks and operators script against.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import chain, islice
from typing import Any

import structlog

from connectors.base import Connector, Progress, System
from connectors.registry import registered
from state.flags import Flag
from state.outbox import BACKLOG
from state.runs import Key
from state.store import NewOutboxRow, StateStore
from syncagent.engine import RoutingState, Rules
from syncagent.errors import FatalError, SyncAgentError, needs_a_person
from syncagent.pipeline import quality, schema_memo
from syncagent.pipeline.decide import (
    World,
    all_persons,
    due_persons,
    evaluate_persons,
    in_chunks,
    load_world,
)
from syncagent.pipeline.handoff import Handoff, handoff_for_chunk, task_context
from syncagent.pipeline.match import match
from syncagent.pipeline.overlap import PushAlongside
from syncagent.pipeline.pieces import for_plans, known_fields
from syncagent.pipeline.plan import PersonPlan, PlanContext, plan_person_noting
from syncagent.pipeline.pull import pull
from syncagent.pipeline.push import LIST_OPERATIONS, PushResult, push
from syncagent.pipeline.quarantine import Poison, flag_poison
from syncagent.pipeline.records import is_person
from syncagent.pipeline.settle import read_back
from syncagent.pipeline.tasks import TaskContext
from syncagent.pipeline.workers import EvaluationPool, Job, can_share, worker_count
from syncagent.pipeline.writer import ChunkWriter

log = structlog.get_logger(__name__)


@dataclass
class Agent:
    """Everything a cycle needs: the store, a connector per system, the rules, who we are."""

    store: StateStore
    connectors: Mapping[System, Connector]
    rules: Rules
    holder: str = "agent"
    write: bool = True  # False for dry-run: plan, but queue and write nothing
    # Owners that mean "not assigned by a person": the integration user, a default owner.
    machine_owners: frozenset[str] = frozenset()
    # The remote systems' time: cursors never pass the cycle start, so it must not run behind.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Processes that evaluate a cycle's chunks (pipeline/workers.py): None, one per core but
    # one (a rescore: one per core; at most 4); 0, none (all in this process). Setting
    # `eval_workers`.
    workers: int | None = None


@dataclass
class CycleOptions:
    rescore: bool = False  # evaluate every person, not only the changed or due ones
    pull: bool = True
    push: bool = True   # False: the planned writes wait in the outbox for the next cycle
    progress: Callable[[Progress], None] | None = None
    on_plans: Callable[[list[PersonPlan]], None] | None = None


def per_system(systems: Iterable[str] | None = None) -> dict[str, int]:
    """A zero for each system (the registered ones unless told): the report's per-system
    figures always name every system."""
    return dict.fromkeys(registered() if systems is None else systems, 0)


@dataclass
class CycleReport:
    # records read per stream, keyed "system.stream" (as_json gives the stream names alone)
    pulled: dict[str, int] = field(default_factory=dict)
    persons_evaluated: int = 0
    written: dict[str, int] = field(default_factory=per_system)
    created: dict[str, int] = field(default_factory=per_system)
    rejected: int = 0
    retry_pending: int = 0
    api_calls: dict[str, int] = field(default_factory=per_system)
    duration_s: float = 0.0
    planned: int = 0
    list_changes: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    fields_dropped: int = 0   # fields left out of written records because the API refused them
    # feature -> why it is off (a field it needs is missing), by system
    features_off: dict[str, dict[str, str]] = field(default_factory=dict)
    status: str = "running"  # ok | partial | failed | stopped, once the cycle is over
    retried: int = 0  # writes that failed for now and wait in the outbox
    dead_letters: int = 0  # dead letters in the outbox after this cycle
    # Errors no retry can fix (credentials, quota, schema): re-raised once the run is recorded.
    unfixable: list[SyncAgentError] = field(default_factory=list)
    step_failed: bool = False
    tasks_queued: int = 0   # alert and SLA tasks queued (run record only, not the contract)

    def as_json(self) -> dict[str, Any]:
        """Exactly the keys of the `sync --once --json` contract (``features_off`` only when
        a missing field switched a feature off)."""
        body = {"status": self.status, "pulled": self.pulled_by_stream(),
                "persons_evaluated": self.persons_evaluated, "written": self.written,
                "created": self.created, "rejected": self.rejected,
                "retry_pending": self.retry_pending, "api_calls": self.api_calls,
                "duration_s": round(self.duration_s, 3)}
        if self.features_off:
            body["features_off"] = self.features_off
        return body

    def pulled_by_stream(self) -> dict[str, int]:
        """Records read per stream name, as the JSON contract has them ("Lead", "contacts")."""
        out: dict[str, int] = {}
        for key, count in self.pulled.items():
            name = key.split(".", 1)[-1]
            out[name] = out.get(name, 0) + count
        return out

    def figures(self) -> dict[str, Any]:
        """The one-line summary `run` logs per cycle."""
        return {"status": self.status, "pulled": sum(self.pulled.values()),
                "persons_evaluated": self.persons_evaluated, "planned": self.planned,
                "written": self.written, "created": self.created, "rejected": self.rejected,
                "retry_pending": self.retry_pending, "dead_letters": self.dead_letters,
                "tasks_queued": self.tasks_queued, "errors": len(self.errors),
                "api_calls": self.api_calls, "duration_s": round(self.duration_s, 3)}


def run_cycle(agent: Agent, stop: threading.Event | None = None,
              options: CycleOptions | None = None) -> CycleReport:
    """Run one whole cycle and record it in the runs table, with an honest status. An error
    no retry can fix (credentials, quota, schema) is raised after the run is recorded."""
    stop = stop or threading.Event()
    options = options or CycleOptions()
    store, started, clock = agent.store, agent.clock(), time.perf_counter()
    calls_before = {s: c.api_calls for s, c in agent.connectors.items()}
    for connector in agent.connectors.values():  # waits inside the connectors end on this stop
        connector.watch(stop)
    run_id = store.runs.start("rescore" if options.rescore else "cycle", agent.holder, started)
    systems = list(agent.connectors)
    report = CycleReport(written=per_system(systems), created=per_system(systems),
                         api_calls=per_system(systems))
    interrupted = False
    try:
        schema_memo.restore(agent)   # what the last process read of each schema
        if agent.write:
            preflight(agent)
        _steps(agent, stop, options, started, report)
    except BaseException as error:  # any step: never left `running`, never recorded `ok`
        # An exception is a failure; KeyboardInterrupt or SystemExit is a stop.
        report.step_failed = isinstance(error, Exception)
        interrupted = not report.step_failed
        report.errors.append(_error_entry(error))
        raise
    finally:
        report.api_calls = {s: c.api_calls - calls_before[s]
                            for s, c in agent.connectors.items()}
        _outbox_figures(store, report)
        report.features_off = {s: dict(c.features_off)
                               for s, c in agent.connectors.items() if c.features_off}
        report.duration_s = time.perf_counter() - clock
        report.status = cycle_status(report, stop.is_set() or interrupted)
        store.runs.finish(run_id, status=report.status, counts=_counts(report),
                          api_calls=report.api_calls, errors=report.errors)
        store.runs.set_value(Key.LAST_CYCLE, report.as_json())
        schema_memo.keep(agent)
    if report.unfixable:
        raise report.unfixable[0]
    return report


SETUP_HINT = ("Run `syncagent doctor` to list what each system lacks, then create it (and, in "
              "Salesforce, grant the integration user read and edit access).")


def preflight(agent: Agent) -> None:
    """Before anything is written: each system that can check itself must be set up for the
    agent. Every system's problem is named, one line each, in one error."""
    problems: list[SyncAgentError] = []
    for connector in agent.connectors.values():
        try:
            connector.preflight()
        except FatalError as error:
            problems.append(error)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise FatalError("\n".join(p.message for p in problems), hint=SETUP_HINT,
                         systems=[p.fields.get("system") for p in problems])


def cycle_status(report: CycleReport, stopped: bool) -> str:
    """`failed`: a step raised, or an error no retry can fix; `stopped`: ended early by a
    stop request; `partial`: it ran to the end but records were rejected or left to retry, or
    a system stopped (budget); `ok`: none of that."""
    if report.step_failed or report.unfixable:
        return "failed"
    if stopped:
        return "stopped"
    if report.rejected or report.retried or report.errors:
        return "partial"
    return "ok"


def _error_entry(error: BaseException) -> dict[str, Any]:
    if isinstance(error, SyncAgentError):
        return error.as_dict()
    # Only the type: an unknown exception's text may carry record values or SQL.
    return {"error": type(error).__name__, "message": f"the cycle crashed ({type(error).__name__})",
            "hint": "See the log for the traceback; the next cycle retries."}


def _outbox_figures(store: StateStore, report: CycleReport) -> None:
    try:
        counts = store.outbox.counts(BACKLOG)   # bounded: never the done rows
    except Exception:  # the DB may be what failed; the run record says so already
        return
    # Rows in flight are pending too: a killed push leaves them claimed until the window ends.
    report.retry_pending = counts.get("pending", 0) + counts.get("in_flight", 0)
    report.dead_letters = counts.get("dead", 0)


def _steps(agent: Agent, stop: threading.Event, options: CycleOptions, started: datetime,
           report: CycleReport) -> None:
    store = agent.store
    down: set[str] = set()
    if options.pull:
        pulled = pull(list(agent.connectors.values()), store, started, stop, options.progress)
        report.pulled = dict(pulled.counts)
        _note_stops(report, pulled.stopped, pulled.stop_errors)
        down = set(pulled.stopped)
        # a missing scope switches off one stream: reported, the cycle is partial, run goes on
        report.errors += [{"error": "feature_off", "system": s, "stream": name, "message": m}
                          for s, off in pulled.features_off.items() for name, m in off.items()]
    match(store, started)  # also what a crashed cycle pulled and never matched
    if stop.is_set():
        return
    # A system that failed this cycle (outage, budget) gets no writes: they wait in the
    # outbox for the first cycle it answers again; the other system is written now, while the
    # persons are evaluated (overlap.py). List changes wait for the last push: the contacts a
    # create makes join their lists in the same calls as everyone else.
    pushing = agent.write and options.push
    up = {s: c for s, c in agent.connectors.items() if s not in down} if pushing else {}
    with PushAlongside(up, store, agent.holder, stop, defer=LIST_OPERATIONS,
                       finish=True) as early:
        world = _evaluate_and_plan(agent, options, started, report)
    if pushing:
        _note_push(agent, report, early.result)
        down |= set(early.result.stopped)
    if pushing and not stop.is_set():
        pushed = _push(agent, stop, report, down, defer=LIST_OPERATIONS)
        pushed.created_persons |= early.result.created_persons
        pushed.created_refs = early.result.created_refs + pushed.created_refs
        if pushed.created_persons and not stop.is_set():
            # Settle: a record just created (a Lead for a HubSpot-only MQL, a contact) changes
            # what its person's other records should hold (cross ids, list membership). Read
            # the new records back (the org fills in defaults: Status, OwnerId) and plan
            # those persons again now, so the next cycle has nothing left to write.
            people = [ref for ref in pushed.created_refs if is_person(ref[0], ref[1])
                      and ref not in early.settled]
            read_back(list(agent.connectors.values()), agent.store, people,
                      pushed.created_persons)
            # The world (users, accounts, owner ids) is as it was: creates add persons only.
            _evaluate_and_plan(agent, options, started, report,
                               only=sorted(pushed.created_persons), world=world)
        if not stop.is_set():
            _push(agent, stop, report, down)


def _push(agent: Agent, stop: threading.Event, report: CycleReport,
          down: set[str], defer: frozenset[str] = frozenset()) -> PushResult:
    up = {s: c for s, c in agent.connectors.items() if s not in down}
    pushed = push(up, agent.store, agent.holder, stop, defer=defer)
    _note_push(agent, report, pushed)
    return pushed


def _note_push(agent: Agent, report: CycleReport, pushed: PushResult) -> None:
    """A push's figures, errors and dropped fields into the cycle's report."""
    for system in agent.connectors:
        report.written[system] = report.written.get(system, 0) + pushed.written.get(system, 0)
        report.created[system] = report.created.get(system, 0) + pushed.created.get(system, 0)
    report.rejected += pushed.rejected
    report.retried += pushed.retried
    for name, count in pushed.list_changes.items():
        report.list_changes[name] = report.list_changes.get(name, 0) + count
    _note_stops(report, pushed.stopped, pushed.stop_errors)
    report.errors += pushed.failures
    report.step_failed = report.step_failed or bool(pushed.failures)
    if pushed.dropped:
        _record_dropped(agent, pushed, report)


def _record_dropped(agent: Agent, pushed: PushResult, report: CycleReport) -> None:
    """Fields written around: data-quality items, and a dead letter per record (counted as
    rejected), so the run is partial and the ledger can re-plan them."""
    flags = quality.dropped_field_flags(pushed.dropped, agent.rules.compiled.fields,
                                        agent.rules.source)
    quality.record(agent.store, flags)
    parts = quality.dead_letters(pushed.dropped)
    agent.store.outbox.add_refused(parts)
    report.fields_dropped += len(pushed.dropped)
    report.rejected += len(parts)
    report.errors.append({"error": "fields_dropped", "count": len(pushed.dropped),
                          "records": len(parts),
                          "fields": sorted({f.detail["field"] for f in flags}),
                          "message": "records were written without fields the API refused; "
                                     "see `syncagent data-quality` and `syncagent errors`"})


def _note_stops(report: CycleReport, stopped: dict[str, str],
                errors: dict[str, SyncAgentError]) -> None:
    for system, message in stopped.items():
        error = errors.get(system)
        entry = error.as_dict(system=system) if error else {"message": message}
        report.errors.append({**entry, "error": "stopped", "system": system,
                              "cause": type(error).__name__ if error else None})
        if error is not None and needs_a_person(error) and error not in report.unfixable:
            report.unfixable.append(error)


def _evaluate_and_plan(agent: Agent, options: CycleOptions, now: datetime,
                       report: CycleReport, only: list[int] | None = None,
                       world: World | None = None) -> World:
    """Evaluate and plan the due persons (``only`` these, when given) a chunk at a time:
    nothing per person outlives its chunk. Returns the world it used, so the settle pass does
    not read every user and account again. More than one chunk: in worker processes when
    the agent has them (pipeline/workers.py), else here."""
    store = agent.store
    if only is not None:
        chunks: Iterable[Sequence[int]] = in_chunks(only)
    elif options.rescore:
        chunks = all_persons(store)
    else:   # a timer step due by now is looked at, whatever the person's own due time says
        chunks = due_persons(store, now)
    if world is None:
        world = load_world(store, agent.machine_owners)
    context = plan_context(agent, world)
    tasks = task_context(agent.connectors, world, agent.rules.compiled.routing.sla.calendar.zone)
    routing = RoutingState.from_dict(store.runs.get_value(Key.ROUTING_STATE))
    workers = worker_count(agent.workers, rescore=options.rescore)
    if workers and options.on_plans is None and can_share(store.url):
        first = iter(chunks)
        ahead = list(islice(first, 2))
        chunks = chain(ahead, first)
        pool = EvaluationPool(store, Job(store.url, agent.rules, world, context, tasks, now),
                              workers)
        # one chunk: nothing to overlap, no process to start
        if len(ahead) > 1 and pool.start():
            _in_workers(agent, pool, chunks, routing, report)
            return world
    _in_process(agent, options, chunks, world, context, tasks, now, routing, report)
    return world


def _in_process(agent: Agent, options: CycleOptions, chunks: Iterable[Sequence[int]],
                world: World, context: PlanContext, tasks: TaskContext, now: datetime,
                routing: RoutingState, report: CycleReport) -> None:
    store = agent.store
    # Each chunk is committed on the writer's thread while the next one is evaluated.
    with ChunkWriter() as writer:
        for chunk in evaluate_persons(store, agent.rules, chunks, world, now, routing):
            report.persons_evaluated += len(chunk.plans)
            rows, notes = [], []
            chunk_context = for_plans(store, context, chunk.plans)
            for plan in chunk.plans:
                planned, noted = plan_person_noting(plan, chunk_context)
                rows.extend(planned)
                notes.extend(noted)
            report.planned += len(rows)
            if options.on_plans is not None:
                options.on_plans(chunk.plans)
            if agent.write:
                # Timers fire and tasks are queued in the same transaction as the decisions.
                handoff = handoff_for_chunk(store, chunk, tasks, now)
                report.tasks_queued += len(handoff.outbox)
                flags = quality.untranslatable_flags(notes, agent.rules.source) + handoff.flags
                # the rotation as it is after this chunk (the next one carries it on)
                values = {Key.ROUTING_STATE: chunk.routing.to_dict()}
                writer.submit(partial(_commit_chunk, store, rows + handoff.outbox,
                                      chunk.decisions, chunk.due, chunk.poison, values,
                                      handoff, flags))


def _in_workers(agent: Agent, pool: EvaluationPool, chunks: Iterable[Sequence[int]],
                routing: RoutingState, report: CycleReport) -> None:
    """The same chunks, evaluated by the pool's processes (started: forked before the
    writer's thread starts); committed here, in order."""
    store = agent.store
    with pool, ChunkWriter() as writer:
        for merged, after in pool.merged(chunks, routing):
            report.persons_evaluated += len(merged.decisions)
            report.planned += merged.planned
            if agent.write:
                report.tasks_queued += len(merged.handoff.outbox)
                values = {Key.ROUTING_STATE: after.to_dict()}
                writer.submit(partial(_commit_chunk, store, merged.rows, merged.decisions,
                                      merged.due, merged.poison, values, merged.handoff,
                                      merged.flags))


def _commit_chunk(store: StateStore, rows: list[NewOutboxRow], decisions: list[dict[str, Any]],
                  due: dict[int, datetime | None], poison: list[Poison],
                  values: dict[str, Any], handoff: Handoff, flags: list[Flag]) -> None:
    """One evaluated chunk's decisions, writes, timers and tasks in one transaction (the
    outbox keeps local time: push claims by it, not by the remote's clock), then its
    data-quality items."""
    store.commit_evaluation(rows, decisions, due, values, handoff=handoff.rows)
    flag_poison(store, poison)
    quality.record(store, flags)


def plan_context(agent: Agent, world: World) -> PlanContext:
    """What planning needs beyond each person and the same for all of them: mappings, owner
    ids, fields the APIs refused. What depends on the persons planned (e-mails held already,
    ambiguous e-mails) is added for each chunk by `for_plans`."""
    nurture = agent.rules.compiled.nurture
    items = agent.store.flags.items_of(quality.REFUSAL_KINDS)
    return PlanContext(agent.rules.compiled.fields, world.owner_for,
                       track_lists={key: track.hubspot_list
                                    for key, track in nurture.by_key.items()},
                       known_fields=known_fields(agent.connectors),
                       refused=quality.refusals(items),
                       profiles={s: c.profile for s, c in agent.connectors.items()})


def _counts(report: CycleReport) -> dict[str, Any]:
    pulled = Counter(report.pulled)
    return {"pulled": sum(pulled.values()), "persons_evaluated": report.persons_evaluated,
            "planned": report.planned, "written": report.written, "created": report.created,
            "rejected": report.rejected, "retry_pending": report.retry_pending,
            "retried": report.retried, "dead_letters": report.dead_letters,
            "errors": len(report.errors), "fields_dropped": report.fields_dropped,
            "tasks_queued": report.tasks_queued}
