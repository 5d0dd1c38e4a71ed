"""The pydantic models of the six mapping files. They define what admins may write (and the
exported JSON Schema); cross-file checks live in ``checks.py``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from syncagent.engine.handoff_file import BusinessHours, Sla, out_of_office_rule
from syncagent.engine.operators import Condition, StrictModel
from syncagent.engine.ranges import Range

Name = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\- ]*$")]
Grade = Literal["A+", "A", "A-", "B+", "B", "B-", "C+", "C", "C-", "D+", "D", "D-", "F"]
ActivityKind = Literal[
    "page_view", "form_submission", "file_download", "email_open", "email_click", "email_bounce",
    "unsubscribe", "webinar_registered", "webinar_attended", "campaign_response",
    "call_connected", "call_attempted", "meeting_set", "meeting_completed", "demo_completed",
    "opportunity_created", "task_completed",
]
Stage = Literal["Subscriber", "Inquiry", "Lead", "MQL", "SAL", "SQL", "Opportunity", "Customer",
                "Recycled", "Nurture", "Disqualified"]
SyncRule = Literal["prefer_salesforce_unless_blank", "always_salesforce", "always_hubspot",
                   "two_way", "dont_sync"]
FieldType = Literal["string", "email", "integer", "number", "date", "country", "phone", "url",
                    "picklist", "boolean"]

# Known picklist values of the Salesforce org the agent manages (see the field contracts).
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Accepted", "Qualified",
                 "Unqualified", "Recycled")
DISQUALIFIED_REASONS = ("No Budget", "No Authority", "Timing", "Competitor", "Not a Fit",
                        "Bad Data")


def _signed_step(value: Any) -> Any:
    # YAML reads `+1` as the integer 1; the steps are written as text like "+2/3".
    if isinstance(value, int) and not isinstance(value, bool):
        return "0" if value == 0 else f"{value:+d}"
    return value


Step = Annotated[Literal["+1", "+2/3", "+1/3", "0", "-1/3", "-2/3", "-1"],
                 BeforeValidator(_signed_step)]
STEP_THIRDS = {"+1": 3, "+2/3": 2, "+1/3": 1, "0": 0, "-1/3": -1, "-2/3": -2, "-1": -3}

When = Annotated[list[Condition], Field(default_factory=list,
                                        description="All of these conditions must hold.")]


# --- fields.yaml -------------------------------------------------------------------------

class Translation(StrictModel):
    """One picklist value: its canonical name and how each system spells it."""

    canonical: str
    salesforce: str | None = None
    hubspot: str | None = None
    aliases: list[str] = Field(default_factory=list,
                               description="Other spellings read as this value.")

    def spellings(self) -> dict[str, str | None]:
        """System -> its spelling, as the file's keys name the systems."""
        return {"salesforce": self.salesforce, "hubspot": self.hubspot}


class SalesforceFields(StrictModel):
    lead: str | None = Field(None, description="API name of the Lead field.")
    contact: str | None = Field(None, description="API name of the Contact field.")


# The file's default sync rule; the rules that name no system (two_way, dont_sync) fall back
# to the system it names.
DEFAULT_SYNC: SyncRule = "prefer_salesforce_unless_blank"
# The (system, object) pairs the file's keys name, and how a message calls each.
MAPPED_OBJECTS = {("hubspot", "contacts"): "hubspot", ("salesforce", "Lead"): "Salesforce Lead",
                  ("salesforce", "Contact"): "Salesforce Contact"}


class FieldMapping(StrictModel):
    name: Name
    salesforce: SalesforceFields = Field(default_factory=SalesforceFields)
    hubspot: str | None = Field(None, description="HubSpot contact property name.")
    sync: SyncRule = Field(DEFAULT_SYNC, description=(
        "Which system wins: prefer_salesforce_unless_blank, always_salesforce, always_hubspot, "
        "two_way (latest change wins) or dont_sync (read only)."))
    type: FieldType = Field("string", description="How values are cleaned on the way in.")
    translate: list[Translation] = Field(default_factory=list)
    ranges: list[Range] = Field(default_factory=list, description=(
        "For a number held as ranges (e.g. HubSpot's numberofemployees): the option each "
        "number falls in, ascending, without gaps or overlaps."))
    description: str = ""

    def remote_names(self) -> dict[tuple[str, str], str]:
        """(system, object) -> the remote field, for each object the file's keys map."""
        names = {("hubspot", "contacts"): self.hubspot,
                 ("salesforce", "Lead"): self.salesforce.lead,
                 ("salesforce", "Contact"): self.salesforce.contact}
        return {key: name for key, name in names.items() if name}


class FieldsFile(StrictModel):
    version: Literal[1] = 1
    fields: list[FieldMapping] = Field(min_length=1)


# --- grading.yaml ------------------------------------------------------------------------

class Criterion(StrictModel):
    name: Name
    when: list[Condition] = Field(min_length=1, description="The criterion matches when all hold.")
    match: Step = Field("+1", description="Grade move on a match, in thirds of a letter.")
    mismatch: Step = Field("-1/3", description="Grade move on a mismatch.")
    blank: Literal["ignore", "mismatch"] = Field(
        "ignore", description="What a blank field means: no move, or a mismatch.")

    @model_validator(mode="after")
    def _directions(self) -> Criterion:
        if STEP_THIRDS[self.match] < 0:
            raise ValueError(f"criterion '{self.name}': match moves the grade down "
                             f"({self.match}); use a step of 0 or more, e.g. '+1/3'")
        if STEP_THIRDS[self.mismatch] > 0:
            raise ValueError(f"criterion '{self.name}': mismatch moves the grade up "
                             f"({self.mismatch}); use a step of 0 or less, e.g. '-1/3'")
        return self


class GradeProfile(StrictModel):
    """An ideal-customer profile; the first whose `when` holds grades the person."""

    name: Name
    when: When
    start: Grade = "D"
    criteria: list[Criterion] = Field(min_length=1)


class Persona(StrictModel):
    name: Name
    when: list[Condition] = Field(min_length=1)


class GradingFile(StrictModel):
    version: Literal[1] = 1
    profiles: list[GradeProfile] = Field(min_length=1, description="First match wins.")
    personas: list[Persona] = Field(default_factory=list, description="First match wins.")


# --- scoring.yaml ------------------------------------------------------------------------

class Category(StrictModel):
    """A group of scoring rules whose positive points share one cap."""

    name: Name
    cap: float | None = Field(None, gt=0, description="Most points this category can add.")


class EarlyBand(StrictModel):
    """Points for an activity that happened within so many days of the person's creation."""

    within_days_of_creation: float = Field(gt=0, description=(
        "The activity happened at most this many days after the person was created."))
    points: float


class ActivityRule(StrictModel):
    name: Name
    kind: ActivityKind
    when: Annotated[list[Condition], Field(default_factory=list,
                                           description="Conditions on the activity details.")]
    points: float
    category: Name
    decays: bool = Field(True, description="Positive points fade with age; penalties do not.")
    early: list[EarlyBand] = Field(default_factory=list, description=(
        "Points instead of `points` when the activity happened soon after the person was "
        "created; bands go from the fewest days to the most, and the first the activity "
        "falls in counts. Later activity, or a person whose creation time is unknown, earns "
        "`points`."))


class ProfileRule(StrictModel):
    name: Name
    when: list[Condition] = Field(min_length=1)
    points: float
    category: Name


class Decay(StrictModel):
    kind: Literal["half_life", "linear", "none"] = "half_life"
    half_life_days: float | None = Field(None, gt=0)
    days_to_zero: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _parameters(self) -> Decay:
        if self.kind == "half_life" and self.half_life_days is None:
            raise ValueError("decay kind 'half_life' needs half_life_days, e.g. 30")
        if self.kind == "linear" and self.days_to_zero is None:
            raise ValueError("decay kind 'linear' needs days_to_zero, e.g. 90")
        return self


class RecencyBand(StrictModel):
    within_days: float = Field(gt=0)
    points: float


class Recency(StrictModel):
    """Points for how recently the person last did something that scores: steps (``bands``)
    or a smooth fade (``max_points`` halving every ``half_life_days``)."""

    category: Name
    bands: list[RecencyBand] = Field(default_factory=list, description=(
        "Steps, from the fewest days to the most: the first band the last activity falls in "
        "counts."))
    max_points: float | None = Field(None, gt=0, description=(
        "Smooth form: points for activity right now, fading with its age."))
    half_life_days: float | None = Field(None, gt=0, description=(
        "Smooth form: the recency points halve every this many days."))

    @model_validator(mode="after")
    def _one_form(self) -> Recency:
        if self.bands and (self.max_points is not None or self.half_life_days is not None):
            raise ValueError("recency takes either bands or max_points with half_life_days, "
                             "not both; keep one form")
        if not self.bands and (self.max_points is None or self.half_life_days is None):
            raise ValueError("recency needs bands, e.g. [{within_days: 3, points: 15}], or "
                             "max_points with half_life_days, e.g. max_points: 30, "
                             "half_life_days: 7")
        return self


class Quadrants(StrictModel):
    high_fit_high_intent: Name = "sales-now"
    high_fit_low_intent: Name = "nurture-then-sales"
    low_fit_high_intent: Name = "other-offers"
    low_fit_low_intent: Name = "leave"

    def in_order(self) -> tuple[str, str, str, str]:
        """The four names in the engine's quadrant order (high fit high intent first)."""
        return (self.high_fit_high_intent, self.high_fit_low_intent, self.low_fit_high_intent,
                self.low_fit_low_intent)


class Segments(StrictModel):
    fit_min_grade: Grade = "B"
    intent_min_score: float = Field(50, ge=0)
    names: Quadrants = Field(default_factory=Quadrants)


class AlertRule(StrictModel):
    name: Name
    activity_kinds: list[ActivityKind] = Field(min_length=1)
    activity_when: Annotated[list[Condition], Field(default_factory=list)]
    when: When


class ScoringFile(StrictModel):
    version: Literal[1] = 1
    categories: list[Category] = Field(min_length=1)
    decay: Decay = Field(default_factory=lambda: Decay(kind="half_life", half_life_days=30))
    activities: list[ActivityRule] = Field(min_length=1,
                                           description="First matching rule per activity wins.")
    profile: list[ProfileRule] = Field(default_factory=list)
    recency: Recency | None = None
    segments: Segments = Field(default_factory=Segments)
    alerts: list[AlertRule] = Field(default_factory=list)
    alert_cooldown_hours: float = Field(24, ge=0, le=8760, description=(
        "At most one alert per person within this many hours."))


# --- lifecycle.yaml ----------------------------------------------------------------------

class InquiryRule(StrictModel):
    activity_kinds: list[ActivityKind] = Field(
        default_factory=lambda: list[ActivityKind](["form_submission"]))


class LeadRule(StrictModel):
    min_score: float = Field(20, ge=0)
    min_grade: Grade | None = None


MqlPolicy = Literal["grade_and_score", "score", "grade", "grade_or_score"]


class MqlRule(StrictModel):
    min_grade: Grade = "B"
    min_score: float = Field(100, ge=0)
    policy: MqlPolicy = Field("grade_and_score", description=(
        "What makes an MQL: grade_and_score (both minimums), score (min_score alone), "
        "grade (min_grade alone) or grade_or_score (either)."))


class SalRule(StrictModel):
    lead_status_in: list[str] = Field(default_factory=lambda: ["Accepted"])


class SqlRule(StrictModel):
    lead_status_in: list[str] = Field(default_factory=lambda: ["Qualified"])
    on_converted: bool = True
    on_opportunity: bool = True


class DisqualifyRule(StrictModel):
    lead_status_in: list[str] = Field(default_factory=lambda: ["Unqualified", "Recycled"])
    recycle_reasons: list[str] = Field(default_factory=list)
    disqualify_reasons: list[str] = Field(default_factory=list)
    recycle_stage: Literal["Recycled", "Nurture"] = "Recycled"
    recycle_track: Name | None = None
    score_on_recycle: Literal["reset", "decay", "keep"] = "reset"
    recycle_score_factor: float = Field(0.5, ge=0, le=1)


class LifecycleFile(StrictModel):
    version: Literal[1] = 1
    inquiry: InquiryRule = Field(default_factory=InquiryRule)
    lead: LeadRule = Field(default_factory=LeadRule)
    mql: MqlRule = Field(default_factory=MqlRule)
    sal: SalRule = Field(default_factory=SalRule)
    sql: SqlRule = Field(default_factory=SqlRule)
    disqualify: DisqualifyRule = Field(default_factory=DisqualifyRule)


# --- routing.yaml ------------------------------------------------------------------------

class PoolMember(StrictModel):
    """A rep in a round-robin pool: weight 2 gets twice the leads of weight 1."""

    user: str = Field(min_length=1, description="Salesforce user id or email.")
    weight: int = Field(1, ge=1, le=100)
    daily_cap: int | None = Field(None, ge=0)


class Pool(StrictModel):
    name: Name
    members: list[PoolMember] = Field(min_length=1)


class Assign(StrictModel):
    """Exactly one of these."""

    account_owner: bool = False
    pool: Name | None = None
    territory: str | None = Field(None, description="Rotate among active users of a territory.")
    user: str | None = None
    queue: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Assign:
        chosen = [k for k in ("pool", "territory", "user", "queue") if getattr(self, k)]
        if self.account_owner:
            chosen.append("account_owner")
        if len(chosen) != 1:
            raise ValueError("assign needs exactly one of account_owner, pool, territory, "
                             f"user, queue (got {', '.join(chosen) or 'none'})")
        return self


class RoutingRule(StrictModel):
    """The first rule whose `when` holds and can assign someone decides the owner."""

    name: Name
    when: When
    assign: Assign
    allow_reassign: bool = Field(False, description="May replace an owner a human chose.")


class RoutingFile(StrictModel):
    version: Literal[1] = 1
    route_from_stage: Stage = "MQL"
    fallback_queue: str = Field(min_length=1)
    rules: list[RoutingRule] = Field(min_length=1, description="First match wins.")
    pools: list[Pool] = Field(default_factory=list)
    sla: Sla = Field(default_factory=Sla)
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    out_of_office: Annotated[str, AfterValidator(out_of_office_rule)] = Field(
        "manager", description=("Who gets alerts and SLA tasks meant for an out-of-office "
                                "rep: manager | pool | user:<email or id>."))


# --- nurture.yaml ------------------------------------------------------------------------

class Track(StrictModel):
    """A nurture programme: a HubSpot list plus a Nurture_Track__c value."""

    name: Name
    hubspot_list: str = Field(min_length=1, max_length=255, description=(
        "Name of the HubSpot contact list (MANUAL or SNAPSHOT) the track's contacts belong "
        "to; the agent looks its id up in the portal."))
    nurture_track_value: str = Field(min_length=1, description="Value of Nurture_Track__c.")
    when: When


class NurtureExit(StrictModel):
    on_mql: bool = True
    on_disqualified: bool = True


class NurtureFile(StrictModel):
    version: Literal[1] = 1
    tracks: list[Track] = Field(min_length=1, description="First match wins.")
    exit: NurtureExit = Field(default_factory=NurtureExit)


FILES: dict[str, type[StrictModel]] = {
    "fields.yaml": FieldsFile,
    "grading.yaml": GradingFile,
    "scoring.yaml": ScoringFile,
    "lifecycle.yaml": LifecycleFile,
    "routing.yaml": RoutingFile,
    "nurture.yaml": NurtureFile,
}
