"""Plain creates whose outcome is unknown are read back, never blindly sent again.

A create with no external-id key (a plain ``POST /composite/sobjects``) is not idempotent: if
its Composite part comes back with no answer, or its call times out or fails with a 5xx after
the org committed, a second send makes a second record. So such a call is sent once (no
blind retry of an unknown outcome: ``RetryPolicy.refused_only``), and records whose outcome
is unknown are looked for among the records the agent's own user created of that object since
just before the call (``CreatedBy.Username``, ``CreatedDate``), matched one to one by the
values sent:

- found: the create landed; it is answered with that record's id (``created=True``);
- not found: it did not land; it is retryable (``NOT_LANDED``), a resend makes no copy;
- the read-back itself fails, or the agent's username is unknown (a given session id): the
  outcome stays unknown, and the record is refused (``OUTCOME_UNKNOWN``: a dead letter, so
  nothing is lost) for a person to check in Salesforce before replaying it.

Keyed creates never come here: they are upserts by their external id (writes.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog

from connectors.base import WriteRef, WriteResult
from connectors.salesforce import streams
from connectors.salesforce.client import SalesforceClient
from syncagent.errors import SyncAgentError

log = structlog.get_logger(__name__)

#: how far before the call the read-back looks: the org's clock may run behind the agent's
CLOCK_MARGIN = timedelta(minutes=2)


def settle_creates(client: SalesforceClient, obj: str, records: Sequence[Mapping[str, Any]],
                   refs: Sequence[WriteRef], sent_at: datetime, why: str) -> list[WriteResult]:
    """One result per record of a plain create whose outcome is unknown (see the module)."""
    username = client.settings.username
    fields = {name for record in records for name in record if name != "attributes"}
    try:
        if not username:
            raise LookupError("no username to read the agent's own creates back by")
        soql = streams.created_since_soql(obj, fields, username, sent_at - CLOCK_MARGIN)
        rows = list(_rows(client, soql))
    except (SyncAgentError, LookupError) as error:
        log.warning("salesforce.create_outcome_unknown", object=obj, records=len(refs),
                    error=type(error).__name__)
        return [WriteResult(ref, "rejected", code="OUTCOME_UNKNOWN",
                            message=f"{why}, and reading the org back failed: the record may "
                                    "exist. Check Salesforce before replaying this write.")
                for ref in refs]
    taken: set[str] = set()
    out = []
    for record, ref in zip(records, refs, strict=True):
        found = next((row for row in rows if str(row["Id"]) not in taken
                      and _holds(row, record)), None)
        if found is None:
            out.append(WriteResult(ref, "retryable", code="NOT_LANDED",
                                   message=f"{why}; the read-back shows it was not created"))
            continue
        taken.add(str(found["Id"]))
        out.append(WriteResult(ref, "ok", id=str(found["Id"]), created=True))
    log.info("salesforce.creates_read_back", object=obj, records=len(refs),
             found=len(taken))
    return out


def _rows(client: SalesforceClient, soql: str) -> Iterator[dict[str, Any]]:
    """Every row of the read-back (a GET: a create's fields make a short query), following
    ``nextRecordsUrl``."""
    page = client.query(soql)
    while True:
        yield from page.get("records", [])
        if page.get("done", True):
            return
        page = client.query_more(page["nextRecordsUrl"])


def _holds(row: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """Whether the org's row holds every value the create sent (field names are
    case-insensitive; values as the org answers them: numbers, datetimes with offsets)."""
    held = {name.casefold(): value for name, value in row.items()}
    return all(_same(value, held.get(name.casefold()))
               for name, value in record.items() if name != "attributes")


def _same(sent: Any, held: Any) -> bool:
    if sent in (None, "") or held in (None, ""):
        return sent in (None, "") and held in (None, "")
    if isinstance(sent, bool) or isinstance(held, bool):
        return str(sent).casefold() == str(held).casefold()
    if isinstance(sent, int | float) or isinstance(held, int | float):
        try:
            return float(sent) == float(held)
        except (TypeError, ValueError):
            return False
    if str(sent).strip() == str(held).strip():
        return True
    try:   # a datetime the org answers in its own form (milliseconds, +0000)
        return streams.parse_datetime(sent) == streams.parse_datetime(held)
    except ValueError:
        return False
