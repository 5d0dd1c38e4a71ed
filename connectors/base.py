"""The connector protocol: the only thing the pipeline knows about Salesforce and HubSpot.

A stream is a row of a table (:class:`StreamSpec`): which object, which fields, which cursor
field, and whether it yields records or activities. A connector reads a stream from a
:class:`Cursor` as :class:`Page` objects; the pipeline commits each page's records together
with ``page.cursor``, so a crash or a stop (quota, budget) between pages loses nothing and
re-reads nothing. Writes return one :class:`WriteResult` per input, in input order.

Every datetime here is timezone-aware UTC.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from connectors.profile import SystemProfile

#: A registered system's name (connectors/registry.py): "salesforce", "hubspot", ...
System = str
StreamKind = Literal["records", "activities"]
WriteOperation = Literal["create", "update", "upsert"]
WriteStatus = Literal["ok", "retryable", "rejected"]


@dataclass(frozen=True)
class StreamSpec:
    """One readable stream: a row of a connector's stream table."""

    name: str                       # unique within the connector, e.g. "Lead", "contacts"
    system: System
    object: str                     # remote object: "Lead", "contacts", "calls", "events"...
    fields: tuple[str, ...]         # fields/properties to read (the id is always read)
    cursor_field: str               # "SystemModstamp", "lastmodifieddate", "hs_lastmodifieddate"
    kind: StreamKind = "records"
    id_field: str = "Id"
    deletes: bool = False           # the stream also reports deleted (and merged) records
    options: Mapping[str, Any] = field(default_factory=dict)  # connector-specific knobs


@dataclass(frozen=True)
class RemoteRecord:
    """A record as the remote system holds it now (or its deletion)."""

    system: str
    object: str
    id: str
    fields: dict[str, Any]
    modstamp: datetime
    deleted: bool = False
    merged_into: str | None = None   # set on a deleted record that was merged into another


@dataclass(frozen=True)
class ActivityRecord:
    """Something a person did or had done to them; ``kind`` is from the shared vocabulary."""

    system: str
    id: str
    kind: str
    occurred_at: datetime
    person_ref: tuple[str, str, str] | None   # (system, object, record id)
    details: dict[str, Any] = field(default_factory=dict)


#: The activity kinds the engine's scoring rules may refer to (CONTRACTS.md).
ACTIVITY_KINDS = frozenset({
    "page_view", "form_submission", "file_download", "email_open", "email_click",
    "email_bounce", "unsubscribe", "webinar_registered", "webinar_attended",
    "campaign_response", "call_connected", "call_attempted", "meeting_set",
    "meeting_completed", "demo_completed", "opportunity_created", "task_completed",
})


@dataclass(frozen=True)
class Cursor:
    """Where a stream's last committed page ended.

    ``modstamp`` is the high-water mark (never later than the cycle start); the next read starts
    at ``modstamp - lookback``. ``boundary_ids`` are the ``"<id>@<epoch ms>"`` keys of rows
    already emitted inside that re-read window, so they are not emitted twice. ``last_id`` is the
    position inside an unfinished sweep (HubSpot keyset / SF partial read); ``sweep`` holds the
    fixed state of that sweep (its bounds) and is ``None`` between sweeps.
    """

    modstamp: datetime | None = None
    last_id: str | None = None
    boundary_ids: frozenset[str] = frozenset()
    sweep: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Page:
    """Records read in one go, and the cursor to commit together with them.

    ``reconcile_ids``, when not None, is the complete set of ids that exist remotely for
    ``object``: any mirrored record of that object whose id is missing was hard-deleted (sent
    after a full id reconcile, when the agent was away longer than the delete-log window).
    Only ``in`` is asked of it, so a connector may give a compact set (connectors/idset.py).
    ``done`` is True on the last page of the stream for this read.
    """

    stream: str
    object: str
    records: list[RemoteRecord | ActivityRecord]
    cursor: Cursor
    done: bool = False
    reconcile_ids: Container[str] | None = None


@dataclass(frozen=True)
class WriteItem:
    """One record to write. ``id`` for update; ``key`` (idempotency/external id) for upsert."""

    fields: dict[str, Any]
    id: str | None = None
    key: str | None = None
    # Fields to blank in a call of their own first: HubSpot's lifecycle stage only moves
    # backwards when it was cleared before (an earlier value is otherwise ignored).
    clear_first: tuple[str, ...] = ()
    # Records a create is associated with, by object: {"contacts": "<id>"} (a HubSpot task).
    associations: Mapping[str, str] = field(default_factory=dict)
    # True only when the outbox knows no earlier attempt of this write was ever sent (its
    # first claim, never released or failed): a create that is not idempotent by nature may
    # then skip looking for a copy an earlier attempt left. False, the safe default, looks.
    never_sent: bool = False


@dataclass(frozen=True)
class WriteRef:
    """What a result refers to: the object and the id or idempotency key given in the item."""

    object: str
    id: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class FieldError:
    """The API refused one field of a record: the field, the API's code and message."""

    field: str
    code: str
    message: str


@dataclass(frozen=True)
class WriteResult:
    """The outcome for one WriteItem. ``code``/``message`` are the API's own on failure.

    ``field_errors``: on a failure, the errors the API tied to named fields (set only when
    every error of the record was so tied, i.e. the record could be written without them).
    ``dropped``: on a success, the fields the connector left out to get the record written
    (they failed on a first attempt); the pipeline records each as a data-quality item.
    """

    ref: WriteRef
    status: WriteStatus
    id: str | None = None
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    field_errors: tuple[FieldError, ...] = ()
    dropped: tuple[FieldError, ...] = ()
    # For creates and upserts: False when the API found the record and updated it (a re-sent
    # create after a crash), True when it made a new one, None when the API did not say.
    created: bool | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class FieldSchema:
    name: str
    label: str
    type: str
    updateable: bool = True
    options: tuple[str, ...] = ()      # picklist / enumeration values
    length: int | None = None


@dataclass(frozen=True)
class ObjectSchema:
    system: str
    object: str
    fields: dict[str, FieldSchema]


@dataclass(frozen=True)
class Progress:
    """Reported after every page of a long read: for a CLI bar and for log lines."""

    system: str
    stream: str
    records: int            # records emitted so far in this read
    pages: int
    total: int | None       # the API's own count when it gives one


ProgressCallback = Callable[[Progress], None]


class ApiCallCounter:
    """Counts API calls per operation (thread-safe); what the pipeline reports as api_calls."""

    def __init__(self, system: str) -> None:
        self.system = system
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, operation: str, n: int = 1) -> None:
        with self._lock:
            self._counts[operation] += n

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def by_operation(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


class _Retrying(Protocol):
    def longest(self, timeout: float) -> float: ...


class _HttpClient(Protocol):
    @property
    def timeout(self) -> float: ...

    @property
    def retry(self) -> _Retrying: ...

    def close(self) -> None: ...


class HttpConnector:
    """What every connector over an HTTP client shares: the billable call count (logins
    do not count against API limits), the longest a call may take, and closing."""

    calls: ApiCallCounter
    client: _HttpClient

    @property
    def api_calls(self) -> int:
        return self.calls.total - self.calls.by_operation().get("login", 0)

    def longest_call(self) -> float:
        return self.client.retry.longest(self.client.timeout)

    def close(self) -> None:
        self.client.close()


@runtime_checkable
class Connector(Protocol):
    """What the pipeline calls. Every connector implements exactly this; what only some
    systems can do is a capability protocol of its own (:class:`ListMembership`,
    :class:`FieldCatalog`)."""

    system: str
    calls: ApiCallCounter

    @property
    def profile(self) -> SystemProfile:
        """The system's facts for the pipeline (connectors/profile.py)."""
        ...

    @property
    def streams(self) -> Mapping[str, StreamSpec]:
        """The stream table by name (read-only: implementations may hold a dict)."""
        ...

    @property
    def api_calls(self) -> int:
        """Calls made so far that count against the API allocation (logins do not)."""
        ...

    @property
    def max_batch(self) -> int:
        """The most records one write call takes."""
        ...

    @property
    def features_off(self) -> Mapping[str, str]:
        """What is switched off and why (a missing field or scope), by feature or stream."""
        ...

    def read(self, stream: str, cursor: Cursor | None, *, cycle_start: datetime | None = None,
             progress: ProgressCallback | None = None) -> Iterator[Page]:
        """Pages of what changed since ``cursor`` (None: everything)."""
        ...

    def read_many(self, cursors: Mapping[str, Cursor | None], *,
                  cycle_start: datetime | None = None,
                  progress: ProgressCallback | None = None) -> Iterator[Page]:
        """Several streams at once, in the fewest calls (Salesforce: Composite polling)."""
        ...

    def fetch(self, object: str, record_ids: Sequence[str]) -> list[RemoteRecord]:
        """Records by id as the remote holds them now (read back after a create)."""
        ...

    def write(self, object: str, operation: WriteOperation,
              batch: Sequence[WriteItem]) -> list[WriteResult]:
        """Write any number of items in API-maximum batches; one result per item, in order."""
        ...

    def describe(self, object: str) -> ObjectSchema:
        """The object's fields (Salesforce describe, HubSpot properties)."""
        ...

    def preflight(self) -> None:
        """Before a cycle that writes: raise FatalError when the system lacks what the agent
        writes (its fields, properties)."""
        ...

    def watch(self, stop: threading.Event) -> None:
        """Waits inside the connector (retries, rate limits) end as soon as ``stop`` is set."""
        ...

    def longest_call(self) -> float:
        """Seconds one write call may take with all its retries (for outbox claims)."""
        ...

    def status(self) -> dict[str, Any]:
        """Calls, budget and the like: for `status`, run reports, and carried across runs."""
        ...

    def close(self) -> None:
        ...


@runtime_checkable
class ListMembership(Protocol):
    """A system whose nurture tracks are lists (see SystemProfile.list_object)."""

    def change_list(self, list_name: str, *, add: Sequence[str] = (),
                    remove: Sequence[str] = ()) -> dict[str, list[str]]:
        """Add/remove records to/from the list of that name; the answer's
        ``recordIdsMissing`` names ids the system does not have."""
        ...


@dataclass(frozen=True)
class WriteBatch:
    """One homogeneous batch of a packed write: its object, operation and items."""

    object: str
    operation: WriteOperation
    items: Sequence[WriteItem]


@dataclass
class PackedWrite:
    """What a packed write did: per batch, per item, its result, or None for an item the call
    did not settle; ``stop`` is then the error to settle it with (``stops_system``: back to the
    queue untouched; otherwise one attempt spent), and it ends this system's push."""

    results: list[list[WriteResult | None]]
    stop: Exception | None = None


@runtime_checkable
class PackedWrites(Protocol):
    """A system whose single call carries several batches, of any objects and operations
    (Salesforce's Composite: five sObject Collections of 200 for one API call)."""

    @property
    def pack_size(self) -> int:
        """The most batches (of ``max_batch`` records) one call carries."""
        ...

    def write_packed(self, batches: Sequence[WriteBatch]) -> PackedWrite:
        """The batches in as few calls as the API allows; results per batch, in input
        order."""
        ...


@runtime_checkable
class SchemaMemory(Protocol):
    """A system whose schema facts (fields, access) are worth keeping for the next process
    (pipeline/schema_memo.py)."""

    def schema_facts(self) -> dict[str, Any] | None:
        """Facts read since the last call (None: nothing new)."""
        ...

    def adopt_schema_facts(self, facts: Mapping[str, Any]) -> None:
        """Take an earlier process's facts (read again only once stale)."""
        ...


@runtime_checkable
class FieldCatalog(Protocol):
    """A system that can say which fields an object has (cached)."""

    def known_fields(self, object: str) -> frozenset[str] | None:
        """The object's field names; None when they cannot be read."""
        ...


@runtime_checkable
class RecordLinks(Protocol):
    """A system that can link to a record in its own UI (for the tasks the agent gives)."""

    def record_url(self, object: str, record_id: str) -> str | None:
        """The record's address for a person to open; None when it cannot be known."""
        ...
