"""Step 3 of docs/adding-a-connector.md: MemCRM's connector, over a dict of records."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import (
    ApiCallCounter,
    Cursor,
    FieldSchema,
    ObjectSchema,
    Page,
    ProgressCallback,
    RemoteRecord,
    StreamSpec,
    WriteItem,
    WriteOperation,
    WriteRef,
    WriteResult,
)
from connectors.profile import SystemProfile
from tests.e2e.memcrm.profile import PROFILE, SYSTEM

PEOPLE = StreamSpec(name="people", system=SYSTEM, object="people",
                    fields=("email", "name", *PROFILE.outputs.values()),
                    cursor_field="modified_at")


@dataclass
class MemCRM:
    """The remote system itself: people by id, each with its last change time."""

    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    modified: dict[str, datetime] = field(default_factory=dict)
    write_calls: list[int] = field(default_factory=list)   # records per write call

    def add(self, record_id: str, fields: dict[str, Any], at: datetime) -> None:
        self.people[record_id] = dict(fields)
        self.modified[record_id] = at


class MemCRMConnector:
    """The Connector protocol (connectors/base.py) over a MemCRM."""

    system = SYSTEM

    def __init__(self, remote: MemCRM, clock: Any = None) -> None:
        self.remote = remote
        self.calls = ApiCallCounter(SYSTEM)
        self.clock = clock or (lambda: datetime.now(UTC))
        self._streams = {PEOPLE.name: PEOPLE}

    @property
    def profile(self) -> SystemProfile:
        return PROFILE

    @property
    def streams(self) -> Mapping[str, StreamSpec]:
        return self._streams

    @property
    def api_calls(self) -> int:
        return self.calls.total

    @property
    def max_batch(self) -> int:
        return PROFILE.batch_size

    @property
    def features_off(self) -> Mapping[str, str]:
        return {}

    def read(self, stream: str, cursor: Cursor | None, *, cycle_start: datetime | None = None,
             progress: ProgressCallback | None = None) -> Iterator[Page]:
        self.calls.add("read")
        since = cursor.modstamp if cursor else None
        until = cycle_start or self.clock()
        changed = sorted((at, rid) for rid, at in self.remote.modified.items()
                         if (since is None or at > since) and at <= until)
        records: list[RemoteRecord | Any] = [
            RemoteRecord(SYSTEM, "people", rid, dict(self.remote.people[rid]), at)
            for at, rid in changed]
        high = changed[-1][0] if changed else since
        yield Page(stream, "people", records, Cursor(modstamp=high), done=True)

    def read_many(self, cursors: Mapping[str, Cursor | None], *,
                  cycle_start: datetime | None = None,
                  progress: ProgressCallback | None = None) -> Iterator[Page]:
        for name, cursor in cursors.items():
            yield from self.read(name, cursor, cycle_start=cycle_start, progress=progress)

    def fetch(self, object: str, record_ids: Sequence[str]) -> list[RemoteRecord]:
        self.calls.add("fetch")
        return [RemoteRecord(SYSTEM, object, rid, dict(self.remote.people[rid]),
                             self.remote.modified[rid])
                for rid in record_ids if rid in self.remote.people]

    def write(self, object: str, operation: WriteOperation,
              batch: Sequence[WriteItem]) -> list[WriteResult]:
        results = []
        for start in range(0, len(batch), self.max_batch):
            chunk = batch[start:start + self.max_batch]
            self.calls.add(operation)
            self.remote.write_calls.append(len(chunk))
            results += [self._write_one(object, item) for item in chunk]
        return results

    def _write_one(self, object: str, item: WriteItem) -> WriteResult:
        ref = WriteRef(object, item.id, item.key)
        if item.id is None or item.id not in self.remote.people:
            return WriteResult(ref, "rejected", code="NOT_FOUND", message="no such person")
        self.remote.people[item.id].update(item.fields)
        # a write lands a moment after the cycle started, as on a real system
        self.remote.modified[item.id] = self.clock() + timedelta(milliseconds=1)
        return WriteResult(ref, "ok", id=item.id)

    def describe(self, object: str) -> ObjectSchema:
        names = PEOPLE.fields if object == "people" else ()
        return ObjectSchema(SYSTEM, object, {n: FieldSchema(n, n, "string") for n in names})

    def preflight(self) -> None:
        """MemCRM has every field the agent writes."""

    def watch(self, stop: threading.Event) -> None:
        """Nothing here waits."""

    def longest_call(self) -> float:
        return 1.0

    def status(self) -> dict[str, Any]:
        return {"calls": self.calls.by_operation()}

    def close(self) -> None:
        """Nothing to close."""
