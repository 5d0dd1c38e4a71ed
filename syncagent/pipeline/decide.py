"""Decide: gather each due person's records and activities, run the engine, store decisions.

Only persons whose data changed, or whose decay or SLA time came due, are evaluated (all of
them on `rescore`). The routing rotation is handed in and returned, so it survives restarts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, cast

import structlog

from connectors.profile import AccountFields, CrmOfRecord, OwnerDirectory, SystemProfile, UserFields
from connectors.registry import registered
from state.mirror import ActivityTuple
from state.runs import Key
from state.store import MirrorRow, StateStore
from syncagent.engine import (
    AccountContext,
    Activity,
    CrmFacts,
    EngineState,
    PersonInput,
    RemoteRecordLike,
    RoutingState,
    Rules,
    User,
    UserDirectory,
    evaluate,
)
from syncagent.engine.mapping import CanonicalProfile
from syncagent.engine.model import build_activity, build_crm_facts, build_person
from syncagent.engine.normalise import email_domain
from syncagent.pipeline.accounts import AccountIndex
from syncagent.pipeline.created import person_created
from syncagent.pipeline.plan import PersonPlan
from syncagent.pipeline.quarantine import Poison, read_values, unusable_values
from syncagent.pipeline.records import Ref, match_rank, same_value

log = structlog.get_logger(__name__)

CHUNK = 1_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DECAY_RECHECK = timedelta(days=1)  # decayed scores are refreshed daily
CUSTOMER_TYPES = frozenset({"customer", "customer - direct", "customer - channel"})
_KIND = attrgetter("kind")


@dataclass(frozen=True)
class _Record:
    """A mirror row as the engine's mapping wants it (modstamp never None)."""

    system: str
    object: str
    fields: Mapping[str, Any]
    modstamp: datetime
    deleted: bool


@dataclass(frozen=True)
class World:
    """What every evaluation in a cycle shares: the CRM's users and accounts by domain, and
    each other system's owner ids for those users."""

    users: UserDirectory
    accounts: Mapping[str, AccountContext]
    # system -> (CRM user id -> that system's owner id), for systems with an owner directory
    owner_for: Mapping[str, Mapping[str, str]]
    machine_owners: frozenset[str] = frozenset()  # user ids whose ownership is nobody's choice
    crm: CrmOfRecord | None = None
    crm_system: str | None = None
    # system -> its profile, for each record's creation field (a person's creation time)
    profiles: Mapping[str, SystemProfile] = field(default_factory=dict)


def load_world(store: StateStore, machine_owners: frozenset[str] = frozenset()) -> World:
    """Users, accounts by domain and owner ids, read a page at a time. What is kept grows
    with the org's users and accounts, never with its persons; accounts are packed
    (`pipeline.accounts`, about 100 bytes each)."""
    profiles = registered()
    crm_profile = next((p for p in profiles.values() if p.crm is not None), None)
    if crm_profile is None or crm_profile.crm is None:
        return World(UserDirectory.of([]), {}, {}, profiles=profiles)
    crm, system = crm_profile.crm, crm_profile.system
    users = [_user(r, crm.users) for r in store.mirror.iter_records(system, crm.users.object)
             if not r.deleted]
    machines = frozenset(u.id for u in users
                         if u.id.lower() in machine_owners or u.email.lower() in machine_owners)
    accounts = AccountIndex.build(_accounts(store, system, crm.accounts))
    owner_for = {p.system: _owner_ids(store, p.system, p.owners, users)
                 for p in profiles.values() if p.owners is not None}
    return World(UserDirectory.of(users), accounts, owner_for, machines, crm, system, profiles)


def _accounts(store: StateStore, system: str, fields: AccountFields) -> Iterator[AccountContext]:
    """The live accounts that have a website, read a page at a time."""
    for row in store.mirror.iter_records(system, fields.object):
        domain = _domain(row.fields.get(fields.website))
        if domain and not row.deleted:
            yield AccountContext(row.remote_id, row.fields.get(fields.owner), domain,
                                 row.fields.get(fields.name))


def _owner_ids(store: StateStore, system: str, directory: OwnerDirectory,
               users: list[User]) -> dict[str, str]:
    """CRM user id -> the system's owner id, matched by e-mail."""
    by_email = {str(r.fields.get(directory.email_field, "")).lower(): r.remote_id
                for r in store.mirror.iter_records(system, directory.object) if not r.deleted}
    return {u.id: by_email[u.email.lower()] for u in users
            if u.email and u.email.lower() in by_email}


def _user(row: MirrorRow, names: UserFields) -> User:
    f = row.fields
    return User(id=row.remote_id, email=str(f.get(names.email) or ""),
                name=str(f.get(names.name) or ""),
                active=f.get(names.active) not in (False, "false"),
                out_of_office=f.get(names.out_of_office) in (True, "true"),
                territory=f.get(names.territory), manager_id=f.get(names.manager))


def _domain(website: Any) -> str | None:
    if not isinstance(website, str) or not website.strip():
        return None
    host = website.strip().lower().split("//")[-1].split("/")[0]
    return host.removeprefix("www.") or None


@dataclass
class Evaluated:
    """One chunk's results, committed by the caller together with the writes they plan."""

    plans: list[PersonPlan]
    decisions: list[dict[str, Any]]
    due: dict[int, datetime | None]
    routing: RoutingState
    poison: list[Poison] = field(default_factory=list)  # values the rules could not use
    # the chunk's stored decisions before this evaluation (stage history compares with them)
    previous: Mapping[int, dict[str, Any]] = field(default_factory=dict)
    gone: list[int] = field(default_factory=list)   # persons whose records were all deleted
    # each person's share of ``poison`` (the worker pool merges chunks person by person)
    poison_of: dict[int, list[Poison]] = field(default_factory=dict)

    def add_poison(self, pid: int, found: list[Poison]) -> None:
        if found:
            self.poison += found
            self.poison_of.setdefault(pid, []).extend(found)


# The engine's evaluate, or a stand-in with its signature (the worker pool's, which notes
# which persons read the routing rotation: pipeline/workers.py).
Judge = Callable[[PersonInput, Rules, datetime, RoutingState, UserDirectory],
                 tuple[Any, RoutingState]]


def evaluate_persons(store: StateStore, rules: Rules, chunks: Iterable[Sequence[int]],
                     world: World, now: datetime, routing: RoutingState) -> Iterator[Evaluated]:
    """Evaluate persons a chunk of ids at a time (each chunk's records, activities and stored
    decisions are read for that chunk only); the routing rotation carries from chunk to
    chunk."""
    for person_ids in chunks:
        chunk = _evaluate_chunk(store, rules, person_ids, world, now, routing)
        routing = chunk.routing
        yield chunk


def all_persons(store: StateStore, size: int = CHUNK) -> Iterator[list[int]]:
    """Every person id, a chunk at a time (``rescore``)."""
    after = 0
    while ids := store.persons.id_page(after, size):
        yield ids
        after = ids[-1]


def due_persons(store: StateStore, now: datetime, size: int = CHUNK) -> Iterator[list[int]]:
    """The persons to evaluate by ``now``, a chunk at a time: their data changed, their decay
    or SLA time came due, or a pending timer step of theirs is due. Each page is read after
    the previous chunk's evaluation is stored, so it starts above that chunk's last id."""
    after = 0
    while ids := store.persons.due_page(now, after, size):
        yield ids
        after = ids[-1]


def in_chunks(person_ids: Sequence[int], size: int = CHUNK) -> Iterator[Sequence[int]]:
    """A given list of ids (the settle pass, an explanation) as chunks."""
    for start in range(0, len(person_ids), size):
        yield person_ids[start:start + size]


def _evaluate_chunk(store: StateStore, rules: Rules, person_ids: Sequence[int], world: World,
                    now: datetime, routing: RoutingState, judge: Judge = evaluate) -> Evaluated:
    # (one record: already in order, the read's own fresh list)
    refs_of = {pid: sorted(refs, key=_record_order) if len(refs) > 1 else refs
               for pid, refs in store.persons.refs_of(person_ids).items()}
    refs = [ref for pid in person_ids for ref in refs_of.get(pid, [])]
    rows = store.mirror.person_rows(refs)
    written = {ref: marks for ref, (_row, marks) in rows.items()}
    activities = store.mirror.activity_tuples((o, r) for _s, o, r in refs)
    previous = store.decisions.before(person_ids)   # reasons cut to what is read: state
    out = Evaluated([], [], {}, routing, previous=previous)
    for pid in person_ids:
        live = _live(rows, refs_of.get(pid, ()))
        if not live:
            out.due[pid] = None
            out.gone.append(pid)
            continue
        profile = None
        try:
            profile = _profile(pid, live, rules, out)
            person = _person_input(pid, live, profile, activities, previous.get(pid), written,
                                   world)
            decision, out.routing = judge(person, rules, now, out.routing, world.users)
        except Exception as exc:  # one person's data must never stop everyone else's cycle
            if profile is None:   # the read failed: what it would have noted, found alone
                out.add_poison(pid, unusable_values([_as_record(r) for r in live],
                                                    [r.remote_id for r in live],
                                                    rules.compiled.fields))
            out.add_poison(pid, _unevaluable(live, exc))
            out.due[pid] = None  # looked at again when one of its records changes
            continue
        row = _decision_row(pid, decision, now)
        out.plans.append(PersonPlan(pid, decision, person.profile, live,
                                    {k: written.get(k, {}) for k in refs_of.get(pid, [])},
                                    _email(live),
                                    (previous.get(pid) or {}).get("evaluated_at"),
                                    decision.reasons_text()))
        out.decisions.append(row)
        out.due[pid] = _next_due(decision, now)
    return out


def _live(rows: Mapping[Ref, tuple[MirrorRow, Any]], refs: Iterable[Ref]) -> list[MirrorRow]:
    """The person's records read and not deleted, in the order of ``refs`` (one pass, one
    look-up a record)."""
    live = []
    for ref in refs:
        found = rows.get(ref)
        if found is not None and not found[0].deleted:
            live.append(found[0])
    return live


def _record_order(ref: Ref) -> tuple[int, str, str, str]:
    """A person's records in match order (the CRM's first), as the match linked them."""
    return (match_rank(ref[0], ref[1]), *ref)


def _unevaluable(records: list[MirrorRow], exc: Exception) -> list[Poison]:
    # The exception's text may quote record values: only its type is kept.
    log.warning("person not evaluated", error=type(exc).__name__,
                records=[f"{r.system}.{r.object}.{r.remote_id}" for r in records])
    return [Poison(r.system, r.object, r.remote_id, "(evaluation)",
                   f"the rules failed on this record's data ({type(exc).__name__})")
            for r in records]


def _as_record(row: MirrorRow) -> RemoteRecordLike:
    """The row as the mapping reads it: itself when it has a modstamp (nearly always; a copy
    costs ~1 us a record), else a copy stamped at the epoch."""
    if row.modstamp is not None:
        return cast(RemoteRecordLike, row)   # every attribute the protocol names, as typed
    return _Record(row.system, row.object, row.fields, EPOCH, row.deleted)


def _profile(pid: int, live: list[MirrorRow], rules: Rules, out: Evaluated
             ) -> CanonicalProfile:
    """The person's canonical profile, the values the rules cannot use noted in ``out`` (found
    as the values are read: quarantine.read_values)."""
    profile, poison = read_values([_as_record(r) for r in live], live, rules.compiled.fields)
    out.add_poison(pid, poison)
    return profile


def _person_input(pid: int, records: list[MirrorRow], profile: CanonicalProfile,
                  activities: Mapping[tuple[str, str], list[ActivityTuple]],
                  previous: Mapping[str, Any] | None, written: Mapping[Ref, Mapping[str, Any]],
                  world: World) -> PersonInput:
    # built without the frozen classes' __init__ (model.builder: the same objects, cheaper)
    acts = [build_activity(kind, when, details, source)
            for r in records
            for _system, source, kind, when, details, _pid in activities.get(
                (r.object, r.remote_id), ())]
    domain = email_domain(profile.values.get("email"))
    state = (previous or {}).get("reasons", {}).get("state")
    return build_person(str(pid), profile.values, tuple(acts),
                        _crm_facts(records, acts, written, world),
                        world.accounts.get(domain) if domain else None,
                        EngineState.from_dict(state) if state else None,
                        person_created(records, world.profiles))


def _crm_facts(records: list[MirrorRow], activities: list[Activity],
               written: Mapping[Ref, Mapping[str, Any]], world: World) -> CrmFacts:
    crm = world.crm
    has_opportunity = "opportunity_created" in map(_KIND, activities)   # in C
    in_crm = [r for r in records if r.system == world.crm_system]
    if crm is None or not in_crm:
        return CrmFacts(has_opportunity=has_opportunity)
    if len(in_crm) > 1:   # (most persons have one CRM record: no sort)
        primary = crm.primary_object
        in_crm.sort(key=lambda r: (r.object != primary, r.modstamp or EPOCH))
    main = in_crm[0]
    marks = written.get((main.system, main.object, main.remote_id), {})
    f = main.fields
    owner, track = crm.owner_field, crm.track_field
    return build_crm_facts(   # every field named, as model.builder needs
        owner_id=f.get(owner),
        owner_set_by_human=(f.get(owner) not in world.machine_owners
                            and _set_by_a_person(owner, f, marks, crm)),
        owner_is_machine=f.get(owner) in world.machine_owners,
        rep_track=f.get(track) if _set_by_a_person(track, f, marks, crm) else None,
        lead_status=f.get(crm.status_field),
        disqualified_reason=f.get(crm.disqualified_field),
        converted=any(r.fields.get(crm.converted_field) in (True, "true") for r in in_crm),
        has_opportunity=has_opportunity,
        is_customer=str(f.get(crm.accounts.type) or "").lower() in CUSTOMER_TYPES,
    )


def _set_by_a_person(name: str, fields: Mapping[str, Any], marks: Mapping[str, Any],
                     crm: CrmOfRecord) -> bool:
    """Someone other than the agent put the current value there (a track the agent never
    wrote; an owner that is a user, not a queue)."""
    value = fields.get(name)
    if value in (None, ""):
        return False
    if name in marks:
        return not same_value(marks[name].get("value"), value)
    return name == crm.track_field or bool(str(value).startswith(crm.users.id_prefix))


def _email(records: list[MirrorRow]) -> str | None:
    for r in records:   # a loop: a generator and next() cost more for one or two records
        if r.email_key:
            return r.email_key
    return None


def _decision_row(pid: int, decision: Any, now: datetime) -> dict[str, Any]:
    return {"person_id": pid, "grade": decision.grade.grade, "score": decision.score.score,
            "segment": decision.segment.segment, "stage": decision.stage.stage,
            "owner": decision.owner.owner_id, "track": decision.track.track,
            "mql_date": decision.stage.mql_date, "reasons": decision.stored(),
            "evaluated_at": now}


def _next_due(decision: Any, now: datetime) -> datetime | None:
    """When this person must be looked at again even if nothing changes: SLA or decay."""
    candidates = [timer.due_at for timer in decision.sla if timer.due_at > now]
    if decision.score.score > 0:
        candidates.append(now + DECAY_RECHECK)
    return min(candidates) if candidates else None


def explain_email(store: StateStore, rules: Rules, email: str, now: datetime,
                  machine_owners: frozenset[str] = frozenset()) -> list[tuple[int, Any]]:
    """Evaluate, without writing anything, every person whose records carry this e-mail."""
    key = email.strip().lower()
    holders = [(s, o, r) for s, o, r, k in store.mirror.email_holders([key]) if k == key]
    persons = sorted(set(store.persons.links_of(holders).values()))
    world = load_world(store, machine_owners)
    routing = RoutingState.from_dict(store.runs.get_value(Key.ROUTING_STATE))
    chunk = _evaluate_chunk(store, rules, persons, world, now, routing)
    return [(plan.person_id, plan.decision) for plan in chunk.plans]
