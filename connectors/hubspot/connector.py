"""HubSpotConnector: the Connector protocol over :class:`HubSpotClient`.

Reads go by each stream's read mode (reading.py; searchable objects by the incremental search
sweep of sweep.py), writes through the batch writer (writes.py), list membership through
lists.py, the portal's properties through schema.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from connectors.base import (
    ApiCallCounter,
    Cursor,
    FieldSchema,
    HttpConnector,
    ObjectSchema,
    Page,
    ProgressCallback,
    RemoteRecord,
    StreamSpec,
    WriteItem,
    WriteOperation,
    WriteResult,
)
from connectors.budget import DailyBudget
from connectors.hubspot import errors, own_writes, streams
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.concurrent import interleave
from connectors.hubspot.limits import BATCH_MAX
from connectors.hubspot.lists import ListMemberships
from connectors.hubspot.profile import PROFILE
from connectors.hubspot.reading import StreamReader
from connectors.hubspot.schema import PortalSchema, preflight_error
from connectors.hubspot.streams import ReadMode
from connectors.hubspot.tasks import GuardedTasks
from connectors.hubspot.writes import BatchWriter
from connectors.retry import RetryPolicy
from syncagent.errors import ConfigError

log = structlog.get_logger(__name__)


class HubSpotConnector(HttpConnector):
    """Reads streams, writes batches, changes list memberships; counts calls in ``calls``."""

    system = PROFILE.system
    profile = PROFILE

    def __init__(self, client: HubSpotClient, *, lookback: timedelta,
                 stream_table: Sequence[StreamSpec] = streams.STREAMS,
                 own_writes_seen: Mapping[str, Sequence[Sequence[int]]] | None = None) -> None:
        self.client: HubSpotClient = client
        # when (remote clock, epoch ms) our own batch writes landed: not re-read (own_writes.py)
        self.own_writes = own_writes.OwnWrites(own_writes_seen or {})
        self.lookback = lookback
        self.streams: dict[str, StreamSpec] = {s.name: s for s in stream_table}
        for spec in stream_table:
            streams.read_mode(spec)       # a stream with no known read mode fails here, early
        self.calls: ApiCallCounter = client.calls
        self.budget: DailyBudget = client.budget
        self.reader = StreamReader(client, lookback=lookback, own_writes_seen=self.own_writes,
                                   streams_by_name=self.streams)
        self.writer = BatchWriter(client, on_written=self.own_writes.note)
        assert PROFILE.tasks is not None
        self.tasks = GuardedTasks(client, self.writer, PROFILE.tasks)
        self.lists = ListMemberships(client)
        self.features_off: dict[str, str] = {}    # stream -> why (e.g. a missing scope)
        self._schema = PortalSchema(client)

    @classmethod
    def from_settings(cls, settings: Any, *, retry: RetryPolicy | None = None,
                      budget_history: Mapping[str, int] | None = None,
                      stream_table: Sequence[StreamSpec] = streams.STREAMS,
                      mapped_fields: Sequence[str] = (),
                      own_writes_seen: Mapping[str, Sequence[Sequence[int]]] | None = None
                      ) -> HubSpotConnector:
        """Build from ``syncagent.settings.Settings`` (its ``.hubspot`` and ``.ca_bundle``);
        ``mapped_fields`` (HubSpot names from fields.yaml) are read by the contacts stream;
        ``own_writes_seen`` is ``status()["own_writes"]`` of the previous process."""
        stream_table = streams.with_mapped_fields(tuple(stream_table), mapped_fields)
        hs = settings.hubspot
        budget = DailyBudget("hubspot", hs.daily_budget_share, history=budget_history)
        ca: Path | None = settings.ca_bundle
        client = HubSpotClient(hs, ca_bundle=ca, retry=retry, budget=budget)
        return cls(client, lookback=timedelta(seconds=hs.lookback_seconds),
                   stream_table=stream_table, own_writes_seen=own_writes_seen)

    # --- reads -----------------------------------------------------------------------------
    def read_many(self, cursors: Mapping[str, Cursor | None], *,
                  cycle_start: datetime | None = None,
                  progress: ProgressCallback | None = None) -> Iterator[Page]:
        """Every stream, read at once. A stream the token has no scope for is switched off
        (its reason kept in ``features_off``) and the others still run: a 403 on owners must
        not stop the engagement streams."""
        self.features_off = {}

        def lane(names: list[str]) -> Callable[[], Iterator[Page]]:
            def read() -> Iterator[Page]:
                for name in names:
                    try:
                        yield from self.read(name, cursors[name], cycle_start=cycle_start,
                                             progress=progress)
                    except errors.MissingScopes as exc:
                        self.features_off[name] = exc.message
                        log.warning("hubspot.stream_off", stream=name, **exc.as_dict())
            return read

        # Lanes at once (concurrent.py): each searched stream in a lane of its own, and the
        # streams read by plain calls (events, owners, archived contacts) in one more, which
        # count against the ten-second limit instead. The searches share the client's search
        # limiter, so side by side they fill the per-second limit without a 429; one after
        # another, a search's own round trip and the caller's store of its page left it
        # unused (the contacts sweep alone went at under 3 a second).
        searched = [n for n in cursors if streams.read_mode(self._spec(n)) == ReadMode.SEARCH]
        others = [n for n in cursors if n not in searched]
        lanes = [[name] for name in searched] + ([others] if others else [])
        return interleave([lane(names) for names in lanes])

    def _spec(self, stream: str) -> StreamSpec:
        spec = self.streams.get(stream)
        if spec is None:
            raise ConfigError(f"unknown HubSpot stream '{stream}'",
                              hint="Known: " + ", ".join(self.streams))
        return spec

    def read(self, stream: str, cursor: Cursor | None, *, cycle_start: datetime | None = None,
             progress: ProgressCallback | None = None) -> Iterator[Page]:
        spec = self._spec(stream)
        start = (cycle_start or datetime.now(UTC)).astimezone(UTC)
        return self.reader.read(spec, cursor, start, progress)

    @property
    def keyset_restarts(self) -> int:
        """Sweep segments restarted at HubSpot's 10,000-result search cap."""
        return self.reader.sweep.keyset_restarts

    @property
    def events_available(self) -> bool | None:
        """Whether the portal has the web events API (None until the first events read)."""
        return self.reader.events_available

    # --- writes ----------------------------------------------------------------------------
    def write(self, object: str, operation: WriteOperation,
              batch: Sequence[WriteItem]) -> list[WriteResult]:
        """Batch writes with bad inputs isolated (connectors/hubspot/writes.py); task
        creates are looked up before they are sent (tasks.py)."""
        if object == self.tasks.spec.object and operation == "create":
            results = self.tasks.create(batch)
        else:
            results = self.writer.write(object, operation, batch)
        self._schema.after_refusals(results)
        return results

    def fetch(self, object: str, record_ids: Sequence[str]) -> list[RemoteRecord]:
        """Records by id with their stream's properties (batch read: 100 a call, no search
        lag), e.g. contacts the agent just created, with what HubSpot filled in."""
        spec = next((s for s in self.streams.values() if s.object == object
                     and s.kind == "records" and streams.read_mode(s) == ReadMode.SEARCH), None)
        if spec is None:
            return []
        out: list[RemoteRecord] = []
        for i in range(0, len(record_ids), BATCH_MAX):
            inputs = [{"id": rid} for rid in record_ids[i:i + BATCH_MAX]]
            data = self.client.batch(object, "read", inputs, properties=list(spec.fields))
            for row in data.get("results") or []:
                modstamp = streams.modstamp_of(spec, row) or datetime.now(UTC)
                out.append(streams.to_record(spec, row, modstamp))
        return out

    def change_list(self, list_name: str, *, add: Sequence[str] = (),
                    remove: Sequence[str] = ()) -> dict[str, list[str]]:
        """Add/remove contacts to/from the MANUAL or SNAPSHOT list of that name."""
        return self.lists.change(list_name, add=add, remove=remove)

    # --- schema ----------------------------------------------------------------------------
    def preflight(self) -> None:
        """Before a cycle that writes: the portal must have the agent's properties (one
        properties read, then cached)."""
        missing = self._schema.missing_required()
        if missing:
            raise preflight_error(missing)

    def contact_properties(self) -> frozenset[str] | None:
        """The portal's contact property names (cached; None when they cannot be read)."""
        return self._schema.contact_properties()

    def known_fields(self, object: str) -> frozenset[str] | None:
        """connectors.base.FieldCatalog: the contacts' properties (others: not known)."""
        return self.contact_properties() if object == "contacts" else None

    def schema_facts(self) -> dict[str, Any] | None:
        """Property facts read since the last call, for the next process (None: nothing new)."""
        return self._schema.facts()

    def adopt_schema_facts(self, facts: Mapping[str, Any]) -> None:
        self._schema.adopt(facts)   # an earlier process's: read again only once stale

    def describe(self, object: str) -> ObjectSchema:
        data = self.client.properties(object)
        fields = {}
        for p in data.get("results") or []:
            meta = p.get("modificationMetadata") or {}
            fields[p["name"]] = FieldSchema(
                name=p["name"], label=p.get("label", p["name"]), type=p.get("type", "string"),
                updateable=not meta.get("readOnlyValue", False),
                options=tuple(str(o.get("value")) for o in p.get("options") or []))
        return ObjectSchema(system="hubspot", object=object, fields=fields)

    def owners(self) -> list[RemoteRecord]:
        """All owners (id, email, userId, teams): to match Salesforce users by email."""
        spec = self.streams.get("owners") or streams.STREAMS_BY_NAME["owners"]
        return [r for page in self.reader.owners(spec, None, datetime.now(UTC), None)
                for r in page.records if isinstance(r, RemoteRecord)]

    def watch(self, stop: threading.Event) -> None:
        """Retry and rate-limit waits end as soon as ``stop`` is set (one event per cycle)."""
        self.client.retry.stop = stop
        self.client.limiter.stop = stop
        self.client.search_limiter.stop = stop

    def status(self) -> dict[str, Any]:
        return {"calls": self.calls.by_operation(), "budget": self.budget.status(),
                # the rolling per-hour call count: pass back as from_settings(budget_history=)
                "hours": self.budget.state(),
                "keyset_restarts": self.keyset_restarts,
                # pass back as from_settings(own_writes_seen=)
                "own_writes": self.own_writes.state(),
                "features_off": dict(self.features_off),
                "isolated_inputs": self.writer.isolated,
                # task creates answered by a task already there (a lost answer, a crash)
                "tasks_found_existing": self.tasks.found_existing,
                "task_lookup_calls": self.tasks.lookup_calls,
                "events_api": self.events_available,
                "limiter_waited_seconds": round(self.client.limiter.waited
                                                + self.client.search_limiter.waited, 3)}

    @property
    def max_batch(self) -> int:
        return BATCH_MAX



__all__ = ["HubSpotConnector", "errors"]
