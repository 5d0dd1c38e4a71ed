"""SalesforceConnector: the Connector protocol over :class:`SalesforceClient`.

Reads: several streams in the fewest calls, the next page of up to five streams in each
Composite call and a change check for the rest (reading.py, composite.py). Writes: sObject
Collections of 200, five to a Composite call, with field-level isolation (writes.py,
isolate.py). The org's fields and the features they switch on: schema_cache.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.base import (
    ApiCallCounter,
    Cursor,
    FieldSchema,
    HttpConnector,
    ObjectSchema,
    PackedWrite,
    Page,
    ProgressCallback,
    RemoteRecord,
    StreamSpec,
    WriteBatch,
    WriteItem,
    WriteOperation,
    WriteResult,
)
from connectors.budget import DailyBudget
from connectors.retry import RetryPolicy
from connectors.salesforce import streams
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.limits import COLLECTION_MAX, COMPOSITE_MAX_QUERIES
from connectors.salesforce.profile import PROFILE
from connectors.salesforce.reading import StreamReader
from connectors.salesforce.schema_cache import REQUIRED_FIELDS, SchemaCache, preflight_error
from connectors.salesforce.streams import with_fields, with_options
from connectors.salesforce.writes import CollectionWriter


class SalesforceConnector(HttpConnector):
    """Reads streams, writes batches, describes objects; counts calls in ``self.calls``."""

    system = PROFILE.system
    profile = PROFILE

    def __init__(self, client: SalesforceClient, *, lookback: timedelta,
                 stream_table: Sequence[StreamSpec] = streams.STREAMS) -> None:
        self.client: SalesforceClient = client
        self.lookback = lookback
        self.streams: dict[str, StreamSpec] = {s.name: s for s in stream_table}
        self.calls: ApiCallCounter = client.calls
        self.budget: DailyBudget = client.budget
        self.schema = SchemaCache(client)
        self.reader = StreamReader(client, self.schema, lookback=lookback,
                                   streams_by_name=self.streams)
        self.writer = CollectionWriter(client, self.schema)

    @classmethod
    def from_settings(cls, settings: Any, *, retry: RetryPolicy | None = None,
                      budget_history: Mapping[str, int] | None = None,
                      stream_table: Sequence[StreamSpec] = streams.STREAMS
                      ) -> SalesforceConnector:
        """Build from ``syncagent.settings.Settings`` (its ``.salesforce`` and ``.ca_bundle``)."""
        sf = settings.salesforce
        budget = DailyBudget("salesforce", sf.daily_budget_share, history=budget_history)
        ca: Path | None = settings.ca_bundle
        client = SalesforceClient(sf, ca_bundle=ca, retry=retry, budget=budget)
        return cls(client, lookback=timedelta(seconds=sf.lookback_seconds),
                   stream_table=stream_table)

    # --- reads -----------------------------------------------------------------------------
    def read(self, stream: str, cursor: Cursor | None, *, cycle_start: datetime | None = None,
             progress: ProgressCallback | None = None) -> Iterator[Page]:
        return self.read_many({stream: cursor}, cycle_start=cycle_start, progress=progress)

    def read_many(self, cursors: Mapping[str, Cursor | None], *,
                  cycle_start: datetime | None = None,
                  progress: ProgressCallback | None = None) -> Iterator[Page]:
        """Read several streams in the fewest calls (reading.py): a quiet cycle of every
        stream costs one API call."""
        start = (cycle_start or datetime.now(UTC)).astimezone(UTC)
        return self.reader.read_many(cursors, start, progress)

    def preflight(self) -> None:
        """Before a cycle that writes: the org must have the fields every cycle writes, and the
        integration user must be able to edit them (one describe call, then cached)."""
        self.schema.load([*REQUIRED_FIELDS, *(s.object for s in self.streams.values())])
        missing = self.schema.missing_required()
        if missing:
            self.schema.forget()     # an admin may fix the org while `run` waits: look again
            raise preflight_error(missing)

    def schema_facts(self) -> dict[str, Any] | None:
        """Describe facts read since the last call, for the next process (None: nothing new)."""
        return self.schema.facts()

    def adopt_schema_facts(self, facts: Mapping[str, Any]) -> None:
        self.schema.adopt(facts)    # an earlier process's: preflight reads only stale ones

    @property
    def features_off(self) -> dict[str, str]:
        """Features switched off because a field they need is missing: feature -> why."""
        return dict(self.schema.features_off)

    def lookup(self, obj: str, field: str, values: Sequence[Any]) -> dict[Any, list[str]]:
        """Ids of ``obj`` whose ``field`` is one of ``values`` (quoted by the library)."""
        return self.reader.lookup(obj, field, values)

    def fetch(self, object: str, record_ids: Sequence[str]) -> list[RemoteRecord]:
        """Records by id with the fields their stream reads (e.g. ones the agent just created,
        with the defaults the org filled in): one query per 200 ids."""
        return self.reader.fetch(object, record_ids)

    # --- writes ----------------------------------------------------------------------------
    def write(self, object: str, operation: WriteOperation,
              batch: Sequence[WriteItem]) -> list[WriteResult]:
        """sObject Collections with bad fields isolated (writes.py)."""
        return self.writer.write(object, operation, batch)

    def write_packed(self, batches: Sequence[WriteBatch]) -> PackedWrite:
        """Several batches, of any objects and operations, five collections a Composite call
        (writes.py); the push sends its batches through here (PackedWrites)."""
        return self.writer.write_packed(batches)

    @property
    def pack_size(self) -> int:
        return COMPOSITE_MAX_QUERIES

    # --- schema ----------------------------------------------------------------------------
    def describe(self, object: str) -> ObjectSchema:
        body = self.client.describe(object) or {}
        fields = {}
        for f in body.get("fields", []):
            options = tuple(p.get("value") for p in f.get("picklistValues") or []
                            if p.get("active", True))
            fields[f["name"]] = FieldSchema(name=f["name"], label=f.get("label", f["name"]),
                                            type=f.get("type", "string"),
                                            updateable=bool(f.get("updateable", False)),
                                            options=options, length=f.get("length") or None)
        return ObjectSchema(system="salesforce", object=object, fields=fields)

    def watch(self, stop: threading.Event) -> None:
        """Retry waits end as soon as ``stop`` is set (one event per cycle)."""
        self.client.retry.stop = stop

    def status(self) -> dict[str, Any]:
        """Calls made, budget, re-logins: for `syncagent status` and run reports."""
        return {"calls": self.calls.by_operation(), "budget": self.budget.status(),
                # the rolling per-hour call count: pass back as from_settings(budget_history=)
                "hours": self.budget.state(),
                "logins": self.client.logins, "reauths": self.client.reauths,
                "features_off": self.features_off}

    @property
    def max_batch(self) -> int:
        return COLLECTION_MAX

    def record_url(self, object: str, record_id: str) -> str | None:
        """``https://<instance>/<id>``: the org opens any record by its id (RecordLinks)."""
        host = self.client.instance_host()
        return f"https://{host}/{record_id}" if host else None


__all__ = ["RemoteRecord", "SalesforceConnector", "with_fields", "with_options"]
