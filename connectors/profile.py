"""What the pipeline knows about one remote system, as data: its profile.

The pipeline never names a system. Which objects are people, the field their e-mail is in,
what the agent's outputs are called there, which values people choose by hand, the batch
size, the ids that point at records of another system, when the agent creates a record of its
own: each connector package states these once, in its ``profile.py``, and registers the
profile (``connectors/registry.py``). ``docs/adding-a-connector.md`` walks through one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

#: The decision's parts, by their neutral names: each profile's ``outputs`` maps these to the
#: system's own field names (a system may leave some out).
OUTPUT_PARTS = ("grade", "score", "stage", "segment", "reasons", "mql_date", "track", "owner")


@dataclass(frozen=True)
class PersonObject:
    """An object whose records are people (a Lead, a contact)."""

    object: str
    email_field: str
    # Matching order across every system: records of a lower rank are placed first, so a
    # record met later in the same cycle finds the person they made.
    match_rank: int


@dataclass(frozen=True)
class CrossId:
    """A field of ``object`` that holds the id of the same person's record in ``target``."""

    object: str
    field: str
    target: tuple[str, str]          # (system, object)
    # The agent fills it in (where the remote has the field), for that system's own sync.
    written: bool = False


@dataclass(frozen=True)
class PersonCreate:
    """When the agent creates a person record here for a person who has none, and how.

    ``when``: ``"mql"`` (the person reached MQL) or ``"nurture"`` (the person has a nurture
    track). The create is an upsert on ``key_field``, whose value is the person's e-mail
    (``key="email"``) or an id of the agent's own (``key="person"``), so a retried create never
    makes a second record. ``defaults`` fill fields the API requires.
    """

    object: str
    when: Literal["mql", "nurture"]
    key: Literal["person", "email"]
    key_field: str
    defaults: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UserFields:
    """The CRM's users, whom routing assigns (field names on ``object``)."""

    object: str
    id_prefix: str           # every user id starts with it (an owner that is not a queue)
    email: str
    name: str
    active: str
    out_of_office: str
    territory: str
    manager: str


@dataclass(frozen=True)
class AccountFields:
    """The CRM's accounts, matched to a person by the e-mail's domain."""

    object: str
    website: str
    owner: str
    name: str
    type: str                 # as read on the person record (a parent field)


@dataclass(frozen=True)
class CrmOfRecord:
    """The system reps work in: its users and accounts, and the person fields that carry a
    rep's choices. One registered system plays this part."""

    users: UserFields
    accounts: AccountFields
    primary_object: str       # of several records of one person, this object's speaks first
    owner_field: str
    track_field: str          # a nurture track a rep picked
    status_field: str
    disqualified_field: str
    converted_field: str
    converted_date_field: str | None = None   # when the lead was converted (an outcome)


@dataclass(frozen=True)
class OwnerDirectory:
    """Owners of a system that are matched to the CRM's users by e-mail."""

    object: str
    email_field: str


@dataclass(frozen=True)
class TaskSpec:
    """How the agent gives someone a task in this system (an alert, an SLA step): the object
    and its field names. The pipeline fills in the values; the connector writes them in
    batches of ``batch_size``.

    ``who``: the field that points at the person's record (a Salesforce ``WhoId``); or, when
    None, ``association`` names the person object the task is associated with (HubSpot).
    ``key_field``: the field holding the agent's idempotency key, where the API can upsert by
    it (Salesforce's ``Idempotency_Key__c``, an external id); None when it cannot, and the
    connector must keep a retried create from making a second task some other way.
    ``due_is_date``: the due field takes a date (a day), not a timestamp.
    """

    object: str
    subject: str
    body: str
    due: str
    priority: str
    owner: str
    priority_values: Mapping[str, str]      # "high" | "normal" -> the system's value
    batch_size: int
    status: str | None = None
    status_open: str | None = None          # the status of a task nobody has started
    key_field: str | None = None
    who: str | None = None
    association: str | None = None
    due_is_date: bool = False


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class SystemProfile:
    """One system's facts for the pipeline (see the module's docstring)."""

    system: str
    label: str                                  # as a person reads it: "Salesforce"
    person_objects: tuple[PersonObject, ...]
    outputs: Mapping[str, str]                  # OUTPUT_PARTS name -> field name
    batch_size: int                             # records per write call, at most
    human_owned: frozenset[str] = frozenset()   # fields people choose by hand
    # Canonical stage -> the system's own value (None: written as is); unknown -> fallback.
    stage_values: Mapping[str, str] | None = None
    stage_fallback: str | None = None
    # The system's stage order when it only moves a stage forward unless cleared first.
    stage_order: tuple[str, ...] = ()
    unique_email: bool = False                  # the system itself keeps e-mails unique
    cross_ids: tuple[CrossId, ...] = ()
    create: PersonCreate | None = None
    # A record with any of these fields true is not updated (the API refuses it).
    read_only_when: tuple[str, ...] = ()
    crm: CrmOfRecord | None = None
    owners: OwnerDirectory | None = None
    # The person object whose list memberships follow the nurture track (the connector
    # then implements connectors.base.ListMembership).
    list_object: str | None = None
    list_batch_size: int = 0
    # A value as the API takes it (datetimes, numbers, booleans).
    wire: Callable[[Any], Any] = _same
    page_size: int = 0                          # records per read call (for cost figures)
    # Builds the connector from the settings (None: tests build it themselves); see
    # registry.connect.
    connect: Callable[..., Any] | None = None
    # The owners (ids, user names, e-mails) that mean "assigned by no one", from the settings.
    machine_owners: Callable[[Any], Iterable[str]] | None = None
    # Alert and SLA tasks for the people who work here (None: the system takes no tasks).
    tasks: TaskSpec | None = None
    # The field of a person record that says when the system created it (reports count a
    # new lead from it); None: the agent's first sight of the person stands in.
    created_field: str | None = None
    # The field of a person record that says when they became an opportunity (an outcome
    # `export-persons` labels persons by); None: the system does not say.
    opportunity_date_field: str | None = None

    def person_object(self, object_name: str) -> PersonObject | None:
        return next((p for p in self.person_objects if p.object == object_name), None)

    def created_at(self, fields: Mapping[str, Any]) -> datetime | None:
        """When the system created the record these fields belong to (None: not said, or
        not a time); the state DB keeps it beside the record so reports can filter on it."""
        if self.created_field is None:
            return None
        return parse_moment(fields.get(self.created_field))

    def output(self, part: str) -> str | None:
        return self.outputs.get(part)


def parse_moment(value: Any) -> datetime | None:
    """An ISO timestamp or epoch milliseconds (as the systems write them) -> aware UTC; None
    for anything else."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip() if value is not None else ""
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):  # not a time, or none a datetime can hold
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso_wire(value: Any, *, offset: str = "+0000") -> Any:
    """Datetimes as ISO text with milliseconds (``offset``: ``+0000`` or ``Z``)."""
    if isinstance(value, datetime):
        stamp = value.astimezone(UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + offset
    return value
