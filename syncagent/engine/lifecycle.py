"""Lifecycle: the demand waterfall. Stages only move forward, except through a recycle
(or a disqualification) that a rep triggers in Salesforce."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from syncagent.engine.model import STAGE_RANK, CrmFacts, EngineState, StageResult
from syncagent.engine.operators import GRADE_RANK, GRADES
from syncagent.engine.rule_files import LifecycleFile

_SIDE_STAGES = frozenset({"Recycled", "Nurture", "Disqualified"})


@dataclass(frozen=True, slots=True)
class CompiledLifecycle:
    inquiry_kinds: frozenset[str]
    lead_min_score: float
    lead_min_rank: int | None
    mql_min_rank: int
    mql_min_score: float
    mql_policy: str
    sal_statuses: frozenset[str]
    sql_statuses: frozenset[str]
    on_converted: bool
    on_opportunity: bool
    disqualify_statuses: frozenset[str]
    recycle_reasons: frozenset[str]
    recycle_stage: str
    recycle_track: str | None
    score_on_recycle: str
    recycle_factor: float


def compile_lifecycle(spec: LifecycleFile) -> CompiledLifecycle:
    d = spec.disqualify
    return CompiledLifecycle(
        frozenset(spec.inquiry.activity_kinds), spec.lead.min_score,
        GRADE_RANK[spec.lead.min_grade] if spec.lead.min_grade else None,
        GRADE_RANK[spec.mql.min_grade], spec.mql.min_score, spec.mql.policy,
        frozenset(spec.sal.lead_status_in), frozenset(spec.sql.lead_status_in),
        spec.sql.on_converted, spec.sql.on_opportunity, frozenset(d.lead_status_in),
        frozenset(d.recycle_reasons), d.recycle_stage, d.recycle_track, d.score_on_recycle,
        0.0 if d.score_on_recycle == "reset" else
        (1.0 if d.score_on_recycle == "keep" else d.recycle_score_factor))


def rep_event(previous: EngineState | None, crm: CrmFacts, lc: CompiledLifecycle) -> str | None:
    """'recycle' or 'disqualify' when a rep newly disqualified the lead, else None.

    Only a change of (Status, reason) since the last evaluation counts, so a lead that
    re-qualifies later is not recycled again by the same old status.
    """
    if crm.lead_status not in lc.disqualify_statuses:
        return None
    if previous is not None and (previous.seen_lead_status, previous.seen_disqualified_reason) \
            == (crm.lead_status, crm.disqualified_reason):
        return None
    return "recycle" if crm.disqualified_reason in lc.recycle_reasons else "disqualify"


def _mql_reason(grade_rank: int, score: int, lc: CompiledLifecycle) -> str | None:
    """Why the person is an MQL under the file's policy, or None when they are not (most
    persons: the reason's text is made only for those who are)."""
    grade_ok = grade_rank >= lc.mql_min_rank
    score_ok = score >= lc.mql_min_score
    policy = lc.mql_policy
    if policy == "score":
        return _score_text(score, lc) if score_ok else None
    if policy == "grade":
        return _grade_text(grade_rank, lc) if grade_ok else None
    if policy == "grade_or_score":
        return _grade_text(grade_rank, lc) if grade_ok else \
            (_score_text(score, lc) if score_ok else None)
    return f"{_grade_text(grade_rank, lc)} and {_score_text(score, lc)}" \
        if grade_ok and score_ok else None


def _grade_text(grade_rank: int, lc: CompiledLifecycle) -> str:
    return f"grade {GRADES[grade_rank]} ≥ {GRADES[lc.mql_min_rank]}"


def _score_text(score: int, lc: CompiledLifecycle) -> str:
    return f"score {score} ≥ {lc.mql_min_score:g}"


def _target(crm: CrmFacts, grade_rank: int, score: int, inquired: bool,
            lc: CompiledLifecycle) -> tuple[str, str]:
    if crm.is_customer:
        return "Customer", "the account is a customer"
    if crm.has_opportunity and lc.on_opportunity:
        return "Opportunity", "an opportunity exists"
    if crm.converted and lc.on_converted:
        return "SQL", "the lead was converted"
    if crm.lead_status in lc.sql_statuses:
        return "SQL", f"a rep set Status to '{crm.lead_status}'"
    if crm.lead_status in lc.sal_statuses:
        return "SAL", f"a rep accepted it (Status '{crm.lead_status}')"
    mql_why = _mql_reason(grade_rank, score, lc)
    if mql_why:
        return "MQL", mql_why
    lead_grade_ok = lc.lead_min_rank is None or grade_rank >= lc.lead_min_rank
    if score >= lc.lead_min_score and lead_grade_ok and (score > 0 or inquired):
        return "Lead", f"score {score} ≥ {lc.lead_min_score:g}"
    if inquired:
        return "Inquiry", "they submitted a form or responded to a campaign"
    return "Subscriber", "known contact without a qualifying response yet"


def stage(previous: EngineState | None, crm: CrmFacts, grade_rank: int, score: int,
          inquired: bool, event: str | None, lc: CompiledLifecycle,
          now: datetime) -> StageResult:
    """The new stage, why, and the MQL date (stamped once per MQL episode)."""
    prev_stage = previous.stage if previous else None
    mql_date = previous.mql_date if previous else None
    reason_text = crm.disqualified_reason or "no reason given"
    if event == "recycle":
        return StageResult(lc.recycle_stage,
                           f"a rep disqualified it for '{reason_text}', a recycle reason: back "
                           f"to nurture (score {lc.score_on_recycle})", None,
                           prev_stage != lc.recycle_stage, recycled=True)
    if event == "disqualify":
        return StageResult("Disqualified", f"a rep disqualified it for '{reason_text}'",
                           mql_date, prev_stage != "Disqualified", disqualified=True)
    target, why = _target(crm, grade_rank, score, inquired, lc)
    if prev_stage is None:
        new, reason = target, why
    elif prev_stage == "Disqualified" and crm.lead_status in lc.disqualify_statuses \
            and STAGE_RANK[target] < STAGE_RANK["SQL"]:
        new, reason = prev_stage, "stays disqualified until a rep reopens it"
    elif STAGE_RANK[target] > STAGE_RANK.get(prev_stage, -1):
        new, reason = target, why
    else:
        new = prev_stage
        reason = f"stays {prev_stage} (stages never move backwards)" if target != prev_stage \
            else why
    if new == "MQL" and (mql_date is None or prev_stage in _SIDE_STAGES):
        mql_date = now  # a new MQL episode; within one episode the first date stays
    return StageResult(new, reason, mql_date, new != prev_stage)
