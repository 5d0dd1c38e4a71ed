"""The rules engine: pure functions from a person, the rules and the time to a Decision.

Public API (what the pipeline calls)::

    rules = load_rules(Path("mappings"))              # raises MappingError (a ConfigError)
    profile = profile_from_records(records, rules)     # CanonicalProfile(values, sources)
    decision, routing_state = evaluate(person, rules, now, routing_state, users)
    desired = desired_remote_fields(profile.values, rules, "hubspot", "contacts")

No I/O happens here: the caller reads the files' text via ``load_rules`` only.
"""

from syncagent.engine.evaluate import (
    desired_remote_fields,
    evaluate,
    profile_from_records,
    stage_rank,
)
from syncagent.engine.loader import Rules, load_rules
from syncagent.engine.mapping import CanonicalProfile, RemoteRecordLike
from syncagent.engine.model import (
    AccountContext,
    Activity,
    Alert,
    Contribution,
    CrmFacts,
    Decision,
    EngineState,
    GradeResult,
    OwnerResult,
    PersonInput,
    RoutingState,
    ScoreResult,
    SegmentResult,
    SlaTimer,
    StageResult,
    TrackResult,
    User,
    UserDirectory,
)
from syncagent.engine.problems import MappingError, Problem

__all__ = [
    "AccountContext", "Activity", "Alert", "CanonicalProfile", "Contribution", "CrmFacts",
    "Decision", "EngineState", "GradeResult", "MappingError", "OwnerResult", "PersonInput",
    "Problem", "RemoteRecordLike", "RoutingState", "Rules", "ScoreResult", "SegmentResult",
    "SlaTimer", "StageResult", "TrackResult", "User", "UserDirectory", "desired_remote_fields",
    "evaluate", "load_rules", "profile_from_records", "stage_rank",
]
