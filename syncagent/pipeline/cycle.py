"""One cycle: pull -> match -> evaluate -> plan -> push, with its figures in the runs table.

`run_cycle` returns the report that `syncagent sync --once --json` prints; its keys are a
contract that benchmarks and operators script against.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from connectors.base import Connector, Progress
from state.store import StateStore
from syncagent.engine import RoutingState, Rules
from syncagent.errors import SyncAgentError
from syncagent.pipeline import quality
from syncagent.pipeline.evaluate import World, evaluate_persons, load_world
from syncagent.pipeline.match import match
from syncagent.pipeline.plan import PersonPlan, PlanContext, plan_person_noting
from syncagent.pipeline.pull import mirror_row, pull
from syncagent.pipeline.push import PushResult, push
from syncagent.pipeline.records import Ref, is_person

log = structlog.get_logger(__name__)

ROUTING_KEY = "routing_state"


@dataclass
class Agent:
    """Everything a cycle needs: the store, the two connectors, the rules, who we are."""

    store: StateStore
    salesforce: Connector
    hubspot: Connector
    rules: Rules
    holder: str = "agent"
    write: bool = True  # False for dry-run: plan, but queue and write nothing
    # Owners that mean "not assigned by a person": the integration user, a default owner.
    machine_owners: frozenset[str] = frozenset()
    # The remote systems' time: cursors never pass the cycle start, so it must not run behind.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def connectors(self) -> list[Connector]:
        return [self.salesforce, self.hubspot]


@dataclass
class CycleOptions:
    rescore: bool = False  # evaluate every person, not only the changed or due ones
    pull: bool = True
    progress: Callable[[Progress], None] | None = None
    on_plans: Callable[[list[PersonPlan]], None] | None = None


@dataclass
class CycleReport:
    pulled: dict[str, int] = field(default_factory=dict)
    persons_evaluated: int = 0
    written: dict[str, int] = field(default_factory=lambda: {"salesforce": 0, "hubspot": 0})
    created: dict[str, int] = field(default_factory=lambda: {"salesforce": 0, "hubspot": 0})
    rejected: int = 0
    retry_pending: int = 0
    api_calls: dict[str, int] = field(default_factory=lambda: {"salesforce": 0, "hubspot": 0})
    duration_s: float = 0.0
    planned: int = 0
    list_changes: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    fields_dropped: int = 0   # fields left out of written records because the API refused them

    def as_json(self) -> dict[str, Any]:
        """Exactly the keys of the `sync --once --json` contract."""
        return {"pulled": self.pulled, "persons_evaluated": self.persons_evaluated,
                "written": self.written, "created": self.created, "rejected": self.rejected,
                "retry_pending": self.retry_pending, "api_calls": self.api_calls,
                "duration_s": round(self.duration_s, 3)}


def run_cycle(agent: Agent, stop: threading.Event | None = None,
              options: CycleOptions | None = None) -> CycleReport:
    """Run one whole cycle and record it in the runs table."""
    stop = stop or threading.Event()
    options = options or CycleOptions()
    store, started, clock = agent.store, agent.clock(), time.perf_counter()
    calls_before = {c.system: _api_calls(c) for c in agent.connectors}
    run_id = store.start_run("rescore" if options.rescore else "cycle", agent.holder, started)
    report, status = CycleReport(), "ok"
    try:
        _steps(agent, stop, options, started, report)
    except SyncAgentError as error:
        status = "failed"
        report.errors.append(error.as_dict())
        raise
    finally:
        report.api_calls = {c.system: _api_calls(c) - calls_before[c.system]
                            for c in agent.connectors}
        report.retry_pending = store.outbox_counts().get("pending", 0)
        report.duration_s = time.perf_counter() - clock
        status = "stopped" if stop.is_set() and status == "ok" else status
        status = "partial" if report.errors and status == "ok" else status
        store.finish_run(run_id, status=status, counts=_counts(report),
                         api_calls=report.api_calls, errors=report.errors)
        store.set_value("last_cycle", report.as_json())
    return report


def _steps(agent: Agent, stop: threading.Event, options: CycleOptions, started: datetime,
           report: CycleReport) -> None:
    store = agent.store
    if options.pull:
        pulled = pull(agent.connectors, store, started, stop, options.progress)
        report.pulled = dict(pulled.counts)
        report.errors += [{"error": "stopped", "system": s, "message": m}
                          for s, m in pulled.stopped.items()]
    match(store, started)  # also what a crashed cycle pulled and never matched
    if stop.is_set():
        return
    _evaluate_and_plan(agent, options, started, report)
    if agent.write and not stop.is_set():
        pushed = _push(agent, stop, report)
        if pushed.created_persons and not stop.is_set():
            # Settle: a record just created (a Lead for a HubSpot-only MQL, a contact) changes
            # what its person's other records should hold (cross ids, list membership). Read
            # the new records back (the org fills in defaults: Status, OwnerId) and plan
            # those persons again now, so the next cycle has nothing left to write.
            _read_back(agent, pushed.created_refs)
            _evaluate_and_plan(agent, options, started, report,
                               only=sorted(pushed.created_persons))
            _push(agent, stop, report)


def _read_back(agent: Agent, refs: list[tuple[str, str, str]]) -> None:
    """Mirror created records as the remote holds them (connectors that can fetch by id)."""
    for connector in agent.connectors:
        fetch = getattr(connector, "fetch", None)
        if fetch is None:
            continue
        by_object: dict[str, list[str]] = defaultdict(list)
        for system, object_name, record_id in refs:
            if system == connector.system:
                by_object[object_name].append(record_id)
        for object_name, ids in by_object.items():
            try:
                records = fetch(object_name, ids)
            except SyncAgentError as error:  # the next pull reads them anyway
                log.warning("read-back skipped", **error.as_dict(system=connector.system))
                return
            agent.store.upsert_mirror([mirror_row(r) for r in records])


def _push(agent: Agent, stop: threading.Event, report: CycleReport) -> PushResult:
    store = agent.store
    pushed = push({c.system: c for c in agent.connectors}, store, agent.holder, stop)
    for system in ("salesforce", "hubspot"):
        report.written[system] += pushed.written.get(system, 0)
        report.created[system] += pushed.created.get(system, 0)
    report.rejected += pushed.rejected
    for name, count in pushed.list_changes.items():
        report.list_changes[name] = report.list_changes.get(name, 0) + count
    report.errors += [{"error": "stopped", "system": s, "message": m}
                      for s, m in pushed.stopped.items()]
    if pushed.dropped:
        flags = quality.dropped_field_flags(pushed.dropped, agent.rules.c_fields,
                                            agent.rules.source)
        quality.record(store, flags)
        report.fields_dropped += len(pushed.dropped)
        report.errors.append({"error": "fields_dropped", "count": len(pushed.dropped),
                              "fields": sorted({f.detail["field"] for f in flags}),
                              "message": "records were written without fields the API "
                                         "refused; see `syncagent data-quality`"})
    return pushed


def _evaluate_and_plan(agent: Agent, options: CycleOptions, now: datetime,
                       report: CycleReport, only: list[int] | None = None) -> None:
    store = agent.store
    if only is not None:
        person_ids = only
    else:
        person_ids = store.all_person_ids() if options.rescore else store.persons_to_evaluate(now)
    refs_of = _refs_by_person(store.links())
    world = load_world(store, agent.machine_owners)
    context = plan_context(agent, world)
    routing = RoutingState.from_dict(store.get_value(ROUTING_KEY))
    for chunk in evaluate_persons(store, agent.rules, person_ids, refs_of, world, now, routing):
        report.persons_evaluated += len(chunk.plans)
        rows, notes = [], []
        for plan in chunk.plans:
            planned, noted = plan_person_noting(plan, context)
            rows.extend(planned)
            notes.extend(noted)
        report.planned += len(rows)
        if options.on_plans is not None:
            options.on_plans(chunk.plans)
        if agent.write:
            # The outbox keeps local time (push claims by it), not the remote's clock.
            store.commit_evaluation(rows, chunk.decisions, chunk.due,
                                    {ROUTING_KEY: chunk.routing.to_dict()})
            quality.record(store, quality.untranslatable_flags(notes, agent.rules.source))


def _api_calls(connector: Connector) -> int:
    """Calls that count against the API allocation (logins do not)."""
    return int(getattr(connector, "api_calls", connector.calls.total))


def _refs_by_person(links: dict[Ref, int]) -> dict[int, list[Ref]]:
    out: dict[int, list[Ref]] = defaultdict(list)
    for ref, pid in links.items():
        out[pid].append(ref)
    return out


def plan_context(agent: Agent, world: World) -> PlanContext:
    """What planning needs beyond each person: mappings, owner ids, e-mails already held,
    fields the APIs refused."""
    items = agent.store.data_quality(limit=100_000)
    ambiguous = [item["key"].split(":", 1)[1] for item in items
                 if item["kind"] == "ambiguous_email"]
    return PlanContext(agent.rules.c_fields, world.hubspot_owner_for, frozenset(ambiguous),
                       _known_emails(agent.store), refused=quality.refusals(items))


def _known_emails(store: StateStore) -> dict[str, frozenset[str]]:
    by_system: dict[str, set[str]] = defaultdict(set)
    for system, object_name, _rid, email in store.email_index():
        if is_person(system, object_name):
            by_system[system].add(email)
    return {system: frozenset(emails) for system, emails in by_system.items()}


def _counts(report: CycleReport) -> dict[str, Any]:
    pulled = Counter(report.pulled)
    return {"pulled": sum(pulled.values()), "persons_evaluated": report.persons_evaluated,
            "planned": report.planned, "written": report.written, "created": report.created,
            "rejected": report.rejected, "retry_pending": report.retry_pending,
            "fields_dropped": report.fields_dropped}
