"""The JSON shape of a person for ``syncagent preview`` (and tests): parsed, never eval'd."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from syncagent.engine.evaluate import profile_from_records
from syncagent.engine.loader import Rules
from syncagent.engine.model import (
    AccountContext,
    Activity,
    CrmFacts,
    EngineState,
    PersonInput,
    RoutingState,
    User,
    UserDirectory,
)
from syncagent.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Record(_Strict):
    system: Literal["salesforce", "hubspot"]
    object: str
    id: str = ""
    fields: dict[str, Any]
    modstamp: AwareDatetime
    deleted: bool = False


class _Activity(_Strict):
    kind: str
    occurred_at: AwareDatetime
    details: dict[str, Any] = Field(default_factory=dict)
    id: str = ""


class _Crm(_Strict):
    owner_id: str | None = None
    owner_set_by_human: bool = False
    rep_track: str | None = None
    lead_status: str | None = None
    disqualified_reason: str | None = None
    converted: bool = False
    has_opportunity: bool = False
    is_customer: bool = False


class _Account(_Strict):
    account_id: str
    owner_id: str | None = None
    domain: str | None = None
    name: str | None = None


class _Previous(_Strict):
    stage: str | None = None
    mql_date: AwareDatetime | None = None
    track: str | None = None
    owner_id: str | None = None
    assigned_at: AwareDatetime | None = None
    recycled_at: AwareDatetime | None = None
    evaluated_at: AwareDatetime | None = None
    seen_lead_status: str | None = None
    seen_disqualified_reason: str | None = None
    last_alert_at: AwareDatetime | None = None
    sal_at: AwareDatetime | None = None
    routed_by: str | None = None
    handoff_note: str | None = None
    routed_from: str | None = None
    routed_why: str | None = None


class _User(_Strict):
    id: str
    email: str = ""
    name: str = ""
    active: bool = True
    out_of_office: bool = False
    territory: str | None = None
    assigned_today: int = 0
    manager_id: str | None = None


class _Routing(_Strict):
    """The round-robin memory, as `preview --json` prints it."""

    day: str | None = None
    assigned: dict[str, int] = Field(default_factory=dict)
    weights: dict[str, dict[str, int]] = Field(default_factory=dict)


class PersonFile(_Strict):
    """A person to preview: a canonical profile or remote records, plus context."""

    person_id: str
    now: AwareDatetime | None = None
    # When the person was created, for early bands (scoring.yaml); leave out when unknown.
    created_at: AwareDatetime | None = None
    profile: dict[str, Any] | None = None
    records: list[_Record] = Field(default_factory=list)
    activities: list[_Activity] = Field(default_factory=list)
    crm: _Crm = Field(default_factory=_Crm)
    account: _Account | None = None
    previous: _Previous | None = None
    users: list[_User] = Field(default_factory=list)
    routing_state: _Routing | None = None
    # What followed the snapshot `now` (a persons file for backtest/calibrate): preview
    # evaluates the person as of `now` and ignores it.
    outcome: bool | None = None


def _printable(part: Any) -> str:
    """A key as it can be shown on one line (keys may hold newlines or controls)."""
    text = str(part)
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_person_json(text: str, source: str) -> Any:
    """Strict JSON (no NaN or Infinity, which Python's parser accepts) in one error line."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source}:{error.lineno}:{error.colno}: not valid JSON ({error.msg})",
                          hint="Fix the JSON syntax at the position named.") from None
    except ValueError as error:
        raise ConfigError(f"{source}: not valid JSON ({error})",
                          hint="Write null for an unknown number.") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to be a person file",
                          hint="Compare it with mappings/examples/person.json.") from None


class _RecordView:
    """Adapts a parsed record to RemoteRecordLike."""

    def __init__(self, record: _Record) -> None:
        self.system = record.system
        self.object = record.object
        self.fields = record.fields
        self.modstamp = record.modstamp
        self.deleted = record.deleted


def parse_person(data: Any, rules: Rules, source: str
                 ) -> tuple[PersonInput, datetime, RoutingState, UserDirectory]:
    """PersonInput, the evaluation time, routing state and users from a person document."""
    try:
        doc = PersonFile.model_validate(data)
    except ValidationError as error:
        problems = error.errors()
        where = ".".join(_printable(p) for p in problems[0]["loc"]) or "file"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"{source}: {where}: {problems[0]['msg']}{more}",
                          hint="Compare it with mappings/examples/person.json.") from None
    profile: dict[str, Any] = {}
    if doc.records:
        profile.update(profile_from_records([_RecordView(r) for r in doc.records], rules).values)
    if doc.profile:
        profile.update(doc.profile)
    person = PersonInput(
        person_id=doc.person_id, profile=profile,
        activities=tuple(Activity(a.kind, a.occurred_at.astimezone(UTC), a.details, a.id)
                         for a in doc.activities),
        crm=CrmFacts(**doc.crm.model_dump()),
        account=AccountContext(**doc.account.model_dump()) if doc.account else None,
        previous=EngineState(**doc.previous.model_dump()) if doc.previous else None,
        created_at=doc.created_at.astimezone(UTC) if doc.created_at else None,
    )
    now = (doc.now or datetime.now(UTC)).astimezone(UTC)
    users = UserDirectory.of(User(**u.model_dump()) for u in doc.users)
    routing = doc.routing_state.model_dump() if doc.routing_state else None
    return person, now, RoutingState.from_dict(routing), users
