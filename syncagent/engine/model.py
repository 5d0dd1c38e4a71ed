"""The engine's inputs and outputs: plain frozen dataclasses, cheap to build, JSON-friendly.

The pipeline builds a :class:`PersonInput` per person, calls ``evaluate`` and stores the
returned :class:`Decision` (``stored()``: ``to_dict()`` less what is derivable) and
:class:`RoutingState`. ``Decision.state`` is what the engine needs to remember about a
person; hand it back as ``PersonInput.previous``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from syncagent.engine.frozen import builder
from syncagent.engine.reasons_text import rendered

STAGE_RANK: dict[str, int] = {
    "Subscriber": 0, "Inquiry": 1, "Lead": 2, "Recycled": 2, "Nurture": 2, "Disqualified": 2,
    "MQL": 3, "SAL": 4, "SQL": 5, "Opportunity": 6, "Customer": 7,
}


@dataclass(frozen=True, slots=True)
class Activity:
    """One thing a person did (kind from the shared activity vocabulary)."""

    kind: str
    occurred_at: datetime  # aware UTC
    details: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""


@dataclass(frozen=True, slots=True)
class AccountContext:
    """The Salesforce Account whose domain matches the person's email domain, if any."""

    account_id: str
    owner_id: str | None = None
    domain: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class CrmFacts:
    """What Salesforce says now about the person (reps' choices the engine must respect)."""

    owner_id: str | None = None
    owner_set_by_human: bool = False
    # The owner is the integration user or a default owner: the lead is nobody's yet.
    owner_is_machine: bool = False
    rep_track: str | None = None          # Nurture_Track__c a rep picked
    lead_status: str | None = None        # Lead.Status
    disqualified_reason: str | None = None  # Lead.Disqualified_Reason__c
    converted: bool = False
    has_opportunity: bool = False
    is_customer: bool = False


@dataclass(slots=True)
class EngineState:
    """What the engine remembers about a person between evaluations."""

    stage: str | None = None
    mql_date: datetime | None = None
    track: str | None = None
    owner_id: str | None = None
    assigned_at: datetime | None = None
    recycled_at: datetime | None = None
    evaluated_at: datetime | None = None
    seen_lead_status: str | None = None
    seen_disqualified_reason: str | None = None
    last_alert_at: datetime | None = None   # the alert cooldown counts from here
    sal_at: datetime | None = None          # accepted (SAL): the qualify window counts from here
    routed_by: str | None = None            # the routing rule that chose the current owner
    handoff_note: str | None = None         # why an SLA reassign moved it, kept for the rep
    # The CRM's owner when the engine chose another (``owner_id``) whose write is pending,
    # and the sentence that chose it: while the CRM shows that owner, the choice stands.
    routed_from: str | None = None
    routed_why: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineState:
        values = {k: data.get(k) for k in cls.__dataclass_fields__}
        for key in ("mql_date", "assigned_at", "recycled_at", "evaluated_at", "last_alert_at",
                    "sal_at"):
            raw = values[key]
            if isinstance(raw, str):
                values[key] = datetime.fromisoformat(raw)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class PersonInput:
    """Everything the engine needs about one person."""

    person_id: str
    profile: Mapping[str, Any]             # canonical field -> value (see map_person)
    activities: Sequence[Activity] = ()
    crm: CrmFacts = field(default_factory=CrmFacts)
    account: AccountContext | None = None
    previous: EngineState | None = None
    # When the person was created (their CRM record's creation; aware UTC), for the scoring
    # rules' early bands. None: unknown, and every activity earns its rule's own points.
    created_at: datetime | None = None


build_activity = builder(Activity)
build_crm_facts = builder(CrmFacts)
build_person = builder(PersonInput)


@dataclass(frozen=True, slots=True)
class User:
    """A Salesforce user who can own leads."""

    id: str
    email: str = ""
    name: str = ""
    active: bool = True
    out_of_office: bool = False
    territory: str | None = None
    assigned_today: int = 0   # assignments made outside the agent today
    manager_id: str | None = None


@dataclass(frozen=True)
class UserDirectory:
    """Users indexed by id and by lower-case email; build once per cycle."""

    by_id: Mapping[str, User] = field(default_factory=dict)
    by_email: Mapping[str, User] = field(default_factory=dict)
    # territory -> its users by id, filled as routing asks (it scanned every user for each
    # person routed by territory: ~10 µs in an org of 200 users, ~1.5 µs from here, measured)
    _territories: dict[str, tuple[User, ...]] = field(default_factory=dict, init=False,
                                                       repr=False, compare=False)

    @classmethod
    def of(cls, users: Iterable[User]) -> UserDirectory:
        listed = list(users)
        return cls({u.id: u for u in listed}, {u.email.lower(): u for u in listed if u.email})

    def find(self, ref: str) -> User | None:
        return self.by_id.get(ref) or self.by_email.get(ref.lower())

    def in_territory(self, territory: str) -> tuple[User, ...]:
        """The users of a territory, ordered by id."""
        found = self._territories.get(territory)
        if found is None:
            found = self._territories[territory] = tuple(sorted(
                (u for u in self.by_id.values() if u.territory == territory),
                key=lambda u: u.id))
        return found


@dataclass(frozen=True)
class RoutingState:
    """Round-robin memory, handed in and returned so the pipeline can persist it.

    ``weights`` holds each pool's smooth weighted round-robin counters; ``assigned`` counts
    today's assignments per user (reset when ``day`` changes).
    """

    day: str | None = None
    assigned: Mapping[str, int] = field(default_factory=dict)
    weights: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day, "assigned": dict(self.assigned),
                "weights": {k: dict(v) for k, v in self.weights.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RoutingState:
        if not data:
            return cls()
        return cls(day=data.get("day"), assigned=dict(data.get("assigned") or {}),
                   weights={k: dict(v) for k, v in (data.get("weights") or {}).items()})


# --- outputs ----------------------------------------------------------------------------
# Outputs are plain (not frozen) slotted dataclasses: frozen ones cost ~1 µs more each to
# build, which matters at tens of thousands of decisions per second. Treat them as read-only.

@dataclass(slots=True)
class GradeResult:
    grade: str
    profile: str | None
    reasons: tuple[str, ...]


@dataclass(slots=True)
class Contribution:
    rule: str
    category: str
    points: float
    count: int = 1


@dataclass(slots=True)
class ScoreResult:
    score: int
    contributors: tuple[Contribution, ...]   # top contributors, largest effect first
    by_category: Mapping[str, float]
    reasons: tuple[str, ...]


@dataclass(slots=True)
class SegmentResult:
    segment: str
    reason: str


@dataclass(slots=True)
class StageResult:
    stage: str
    reason: str
    mql_date: datetime | None
    changed: bool
    recycled: bool = False
    disqualified: bool = False


@dataclass(slots=True)
class OwnerResult:
    owner_id: str | None
    kind: str            # "user", "queue" or "none"
    rule: str | None
    why: str
    changed: bool


@dataclass(slots=True)
class TrackResult:
    track: str | None
    hubspot_list: str | None      # the HubSpot list's name
    nurture_track_value: str | None
    reason: str
    picked_by_rep: bool = False


@dataclass(slots=True)
class Alert:
    """An alert rule fired for a person's activity: one task for ``recipient_id``."""

    kind: str                       # the alert rule's name
    owner_id: str | None            # the person's owner
    message: str
    idempotency_key: str            # one per person, alert and activity
    occurred_at: datetime
    # Who gets the task: the owner, or (owner out of office) the pool, queue or manager.
    recipient_id: str | None = None
    activity_kind: str = ""
    activity_detail: str = ""       # the URL, form, campaign or subject
    high_priority: bool = False     # grade A or better


@dataclass(slots=True)
class SlaTimer:
    """One step of a hand-off timer. ``started_at`` (the hand-over, or the acceptance for the
    qualify steps) with the kind and the person names the timer: a new owner or a new
    hand-over starts new timers."""

    kind: str            # remind | escalate | reassign | qualify | qualify_late
    due_at: datetime
    owner_id: str | None  # who gets the task: the owner, or the manager for escalate
    message: str
    started_at: datetime | None = None
    lead_owner_id: str | None = None   # the record's owner when the timer started


@dataclass(slots=True)
class Decision:
    """The engine's answer for one person, with the reason behind every part."""

    person_id: str
    evaluated_at: datetime
    grade: GradeResult
    score: ScoreResult
    segment: SegmentResult
    stage: StageResult
    owner: OwnerResult
    track: TrackResult
    persona: str | None
    alerts: tuple[Alert, ...]
    sla: tuple[SlaTimer, ...]
    state: EngineState

    def reasons_text(self, limit: int = 32_000) -> str:
        """A short summary for a long-text field such as Score_Reasons__c."""
        return rendered(self.grade.grade, self.grade.reasons, self.score.score,
                         self.score.reasons, self.segment.segment, self.segment.reason,
                         self.stage.stage, self.stage.reason, self.owner.why,
                         self.track.track, self.track.reason, limit)

    def to_dict(self) -> dict[str, Any]:
        """The whole decision as JSON (what ``preview --json`` shows), its text included."""
        data = _jsonable(self)
        data["reasons_text"] = self.reasons_text()
        return data

    def stored(self) -> dict[str, Any]:
        """What the decisions table keeps: ``to_dict()`` without ``reasons_text`` (rendered
        again from the parts beside it: ``reasons_text_of``) and ``sla`` (the sla_timers
        table holds the timers): ~1.2 KB of the ~2.6 a person, read by nothing."""
        data = _jsonable(self)   # (the timers' copies cost ~1 µs a person: not worth a path)
        del data["sla"]
        return data


def moment_text(moment: date, pattern: str = "") -> str:
    """``moment`` as text (``pattern`` for strftime; none: ISO), kept for the next call with
    the same moment: a cycle stamps every decision, its state and its SLA tasks with the same
    few moments, and formatting one costs about as much as a nested copy. The offset is part
    of the key: equal datetimes of other offsets read otherwise."""
    offset = moment.utcoffset() if isinstance(moment, datetime) else None
    return _formatted(moment, offset, pattern)


@lru_cache(maxsize=256)
def _formatted(moment: date, _offset: timedelta | None, pattern: str) -> str:
    return format(moment, pattern) if pattern else moment.isoformat()


def _moment(value: Any) -> Any:
    """A datetime field's JSON form: ISO text (anything else as it is, as a state read back
    from a stored decision may hold)."""
    return moment_text(value) if isinstance(value, date) else value


# JSON-ready copies of the outputs, one function per type, every field named: the generic
# dataclass walk they replace (a type test and a getattr per value, a call per nested value)
# took ~33 µs a decision, these ~15 (the rescore digest's 4,000 decisions, measured side by
# side). Each copy is a new dict or list (a caller may change it); fields are in declaration
# order (tests/engine/test_to_dict.py compares the copies with a generic walk's).

def _grade_dict(grade: GradeResult) -> dict[str, Any]:
    return {"grade": grade.grade, "profile": grade.profile, "reasons": list(grade.reasons)}


def _contribution_dict(part: Contribution) -> dict[str, Any]:
    return {"rule": part.rule, "category": part.category, "points": part.points,
            "count": part.count}


def _score_dict(score: ScoreResult) -> dict[str, Any]:
    return {"score": score.score,
            "contributors": [_contribution_dict(part) for part in score.contributors],
            "by_category": {str(name): points for name, points in score.by_category.items()},
            "reasons": list(score.reasons)}


def _stage_dict(stage: StageResult) -> dict[str, Any]:
    return {"stage": stage.stage, "reason": stage.reason, "mql_date": _moment(stage.mql_date),
            "changed": stage.changed, "recycled": stage.recycled,
            "disqualified": stage.disqualified}


def _owner_dict(owner: OwnerResult) -> dict[str, Any]:
    return {"owner_id": owner.owner_id, "kind": owner.kind, "rule": owner.rule,
            "why": owner.why, "changed": owner.changed}


def _track_dict(track: TrackResult) -> dict[str, Any]:
    return {"track": track.track, "hubspot_list": track.hubspot_list,
            "nurture_track_value": track.nurture_track_value, "reason": track.reason,
            "picked_by_rep": track.picked_by_rep}


def _alert_dict(alert: Alert) -> dict[str, Any]:
    return {"kind": alert.kind, "owner_id": alert.owner_id, "message": alert.message,
            "idempotency_key": alert.idempotency_key,
            "occurred_at": _moment(alert.occurred_at), "recipient_id": alert.recipient_id,
            "activity_kind": alert.activity_kind, "activity_detail": alert.activity_detail,
            "high_priority": alert.high_priority}


def _timer_dict(timer: SlaTimer) -> dict[str, Any]:
    return {"kind": timer.kind, "due_at": _moment(timer.due_at), "owner_id": timer.owner_id,
            "message": timer.message, "started_at": _moment(timer.started_at),
            "lead_owner_id": timer.lead_owner_id}


def _state_dict(state: EngineState) -> dict[str, Any]:
    return {"stage": state.stage, "mql_date": _moment(state.mql_date), "track": state.track,
            "owner_id": state.owner_id, "assigned_at": _moment(state.assigned_at),
            "recycled_at": _moment(state.recycled_at),
            "evaluated_at": _moment(state.evaluated_at),
            "seen_lead_status": state.seen_lead_status,
            "seen_disqualified_reason": state.seen_disqualified_reason,
            "last_alert_at": _moment(state.last_alert_at), "sal_at": _moment(state.sal_at),
            "routed_by": state.routed_by, "handoff_note": state.handoff_note,
            "routed_from": state.routed_from, "routed_why": state.routed_why}


def _decision_dict(decision: Decision) -> dict[str, Any]:
    return {"person_id": decision.person_id, "evaluated_at": _moment(decision.evaluated_at),
            "grade": _grade_dict(decision.grade), "score": _score_dict(decision.score),
            "segment": {"segment": decision.segment.segment,
                        "reason": decision.segment.reason},
            "stage": _stage_dict(decision.stage), "owner": _owner_dict(decision.owner),
            "track": _track_dict(decision.track), "persona": decision.persona,
            "alerts": [_alert_dict(alert) for alert in decision.alerts],
            "sla": [_timer_dict(timer) for timer in decision.sla],
            "state": _state_dict(decision.state)}


_TO_JSON: dict[type, Callable[[Any], dict[str, Any]]] = {
    Decision: _decision_dict, EngineState: _state_dict}


def _jsonable(value: Decision | EngineState) -> dict[str, Any]:
    """JSON-ready copy of a decision or an engine state (tests/pipeline swap in a generic
    walk here to prove the copies the same)."""
    return _TO_JSON[type(value)](value)
