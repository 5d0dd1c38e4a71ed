"""The Composite subrequests of a Salesforce read and how their answers are judged.

One Composite call carries the next page of up to five streams (a first query, each with a
free ``/deleted`` subrequest, or a ``nextRecordsUrl`` GET), and cheap ``/updated`` +
``/deleted`` change checks for streams waiting for a slot (see ``reading.read_many``). These
are the pure pieces: building the subrequests, reading the delete log, and classifying
answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connectors.base import Cursor, StreamSpec
from connectors.cursor import CursorWindow
from connectors.salesforce import errors, streams
from connectors.salesforce.client import SalesforceClient

log = structlog.get_logger(__name__)
CHECK_SPAN = timedelta(minutes=2)  # /updated and /deleted want more than a minute of range


@dataclass
class Plan:
    """One stream's read in this Composite call: its spec (fields as the org allows), cursor
    window, and whether it needs a full id reconcile."""

    spec: StreamSpec
    cursor: Cursor | None
    window: CursorWindow
    reconcile: bool
    #: a field list too wide for one URL (wide.py): the fields the paging query selects, and
    #: the rest, read by Id for the rows it brings
    query_fields: tuple[str, ...] | None = None
    overflow: tuple[str, ...] = ()

    def query_spec(self) -> StreamSpec:
        """The spec the paging query selects."""
        return self.spec if self.query_fields is None else replace(self.spec,
                                                                   fields=self.query_fields)


def subrequests(client: SalesforceClient, queried: list[Plan], checked: list[Plan],
                start: datetime) -> list[dict[str, Any]]:
    """A query (plus the delete log) per queried stream, a change check per checked one."""
    out: list[dict[str, Any]] = []
    for plan in queried:
        out.append(query_subrequest(client, plan))
        if plan.spec.deletes and plan.window.lower is not None and not plan.reconcile:
            out.append(deleted_subrequest(client, plan, start))
    for plan in checked:
        out.append(updated_subrequest(client, plan, start))
        if plan.spec.deletes:
            out.append(deleted_subrequest(client, plan, start, since_cursor=True))
    return out


def query_subrequest(client: SalesforceClient, plan: Plan) -> dict[str, Any]:
    # the re-read window leaves out the agent's own writes (docs/connectors.md, Convergence)
    read_before = plan.cursor.modstamp if plan.cursor is not None else None
    soql = streams.incremental_soql(plan.query_spec(), plan.window.lower,
                                    read_before=read_before, writer=client.settings.username)
    sub: dict[str, Any] = {"method": "GET", "referenceId": ref(plan.spec.name),
                           "url": client.query_url(soql, include_deleted=plan.spec.deletes)}
    batch = plan.spec.options.get("batch_size")
    if batch:
        # a smaller batch (200..2000) for streams with heavy rows
        sub["httpHeaders"] = {"Sforce-Query-Options": f"batchSize={int(batch)}"}
    return sub


def more_subrequest(plan: Plan, next_url: str) -> dict[str, Any]:
    """A stream's next page: its ``nextRecordsUrl`` GET (or, after a dead locator, its query
    again), at most five of them (with first queries) in one Composite call."""
    sub: dict[str, Any] = {"method": "GET", "referenceId": ref(plan.spec.name, "more"),
                           "url": next_url}
    batch = plan.spec.options.get("batch_size")
    if batch:
        sub["httpHeaders"] = {"Sforce-Query-Options": f"batchSize={int(batch)}"}
    return sub


def updated_subrequest(client: SalesforceClient, plan: Plan, start: datetime) -> dict[str, Any]:
    """Ids changed since the cursor (its high-water mark; the lookback overlap is read when
    the stream is next queried, because a quiet stream keeps its cursor)."""
    since = plan.cursor.modstamp if plan.cursor and plan.cursor.modstamp else start
    begin = min(since, start - CHECK_SPAN)
    params = {"start": sf_datetime(begin), "end": sf_datetime(start)}
    url = client.data_path(f"sobjects/{plan.spec.object}/updated/", params)
    return {"method": "GET", "referenceId": ref(plan.spec.name, "updated"), "url": url}


def deleted_subrequest(client: SalesforceClient, plan: Plan, start: datetime, *,
                        since_cursor: bool = False) -> dict[str, Any]:
    lower = plan.window.lower or start
    if since_cursor and plan.cursor is not None and plan.cursor.modstamp is not None:
        lower = plan.cursor.modstamp
    begin = min(lower, start - CHECK_SPAN)
    params = {"start": sf_datetime(begin), "end": sf_datetime(start)}
    url = client.data_path(f"sobjects/{plan.spec.object}/deleted/", params)
    return {"method": "GET", "referenceId": ref(plan.spec.name, "deleted"), "url": url}


def deleted_rows(plan: Plan, answer: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Rows for ids the delete log reports (hard deletes that queryAll may not show)."""
    if answer is None:
        return []
    if answer.get("httpStatusCode") != 200:
        # e.g. INVALID_REPLICATION_DATE: the log starts later than our window (a young org);
        # queryAll still shows soft deletes, and a long absence triggers a full reconcile.
        log.info("salesforce.deleted_log_unavailable", stream=plan.spec.name,
                 status=answer.get("httpStatusCode"))
        return []
    body = answer.get("body") or {}
    return [{"Id": d["id"], "IsDeleted": True, "SystemModstamp": d.get("deletedDate")}
            for d in body.get("deletedRecords", []) if d.get("id")]


def already_read(plan: Plan, start: datetime) -> frozenset[str]:
    """Ids the previous read emitted, when the change check must reach back before it.

    ``/updated`` wants more than a minute between start and end, so a check soon after a read
    re-covers rows that read saw; those ids are not news. A row that changed again in that
    short span is caught by a later check, once the window no longer reaches back before the
    cursor (a delay of two minutes at most; docs/connectors.md)."""
    if plan.cursor is None or plan.cursor.modstamp is None:
        return frozenset()
    if plan.cursor.modstamp <= start - CHECK_SPAN:
        return frozenset()
    return frozenset(key.partition("@")[0] for key in plan.cursor.boundary_ids)


def has_changes(updated: Mapping[str, Any] | None, deleted: Mapping[str, Any] | None,
                deletes: bool, known: frozenset[str] = frozenset()) -> bool:
    """Whether a change check saw anything (an unclear answer counts as a change); ids in
    ``known`` (see already_read) are not changes."""
    if updated is None or updated.get("httpStatusCode") != 200:
        return True
    if set((updated.get("body") or {}).get("ids") or ()) - known:
        return True
    if not deletes:
        return False
    if deleted is None or deleted.get("httpStatusCode") != 200:
        return True
    return bool((deleted.get("body") or {}).get("deletedRecords"))


def invalid_field(answer: Mapping[str, Any] | None) -> bool:
    """A subrequest refused because a selected field does not exist or is not readable."""
    if answer is None or int(answer.get("httpStatusCode", 200)) != 400:
        return False
    body = answer.get("body")
    return isinstance(body, list) and any(
        isinstance(e, dict) and e.get("errorCode") == "INVALID_FIELD" for e in body)


def ref(name: str, suffix: str = "q") -> str:
    return f"{name}_{suffix}"


def sf_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def subrequest_body(answer: Mapping[str, Any], *, operation: str) -> dict[str, Any]:
    status = int(answer.get("httpStatusCode", 500))
    if status >= 300:
        raise errors.classify(status, answer.get("body"), operation=operation,
                              headers=answer.get("httpHeaders"))
    return dict(answer.get("body") or {})
