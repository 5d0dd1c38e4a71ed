"""List changes in a push: one membership call per batch of a track's list.

A contact missing from the list system fails alone; an unknown or DYNAMIC list fails only its
own rows (every other write goes on), and the message says how to fix the track.
"""

from __future__ import annotations

from connectors.base import Connector, ListMembership, WriteRef, WriteResult
from state.store import OutboxItem
from syncagent.errors import FatalError, RecordRejected, RetryableError, stops_system


def change_list(connector: Connector, object_name: str, operation: str,
                 items: list[OutboxItem]) -> list[WriteResult]:
    """One membership call for the batch; ids the system reports missing are rejected."""
    list_id = object_name.split(":", 1)[1]   # the list's name (resolved by the connector)
    ids = [item.remote_id or "" for item in items]
    if not isinstance(connector, ListMembership):
        return [WriteResult(WriteRef(object_name, rid), "rejected", code="NO_LISTS",
                            message=f"{connector.profile.label} has no lists to change")
                for rid in ids]
    label = connector.profile.label
    try:
        if operation == "list_add":
            answer = connector.change_list(list_id, add=ids)
        else:
            answer = connector.change_list(list_id, remove=ids)
    except RetryableError as error:
        return [WriteResult(WriteRef(object_name, rid), "retryable", code=type(error).__name__,
                            message=error.message) for rid in ids]
    except RecordRejected as error:   # the connector's word: no such list, or a DYNAMIC one
        return [WriteResult(WriteRef(object_name, rid), "rejected", code=error.code,
                            message=error.message) for rid in ids]
    except FatalError as error:
        if stops_system(error):
            raise
        # An unknown or DYNAMIC list: these rows cannot succeed until the track is fixed;
        # other lists and every other write go on.
        code, message = list_refused(label, list_id, error)
        return [WriteResult(WriteRef(object_name, rid), "rejected", code=code, message=message)
                for rid in ids]
    # A contact that is already out of the list is where a removal wants it: only a missing
    # contact on an add is a failure.
    missing = set(answer.get("recordIdsMissing", [])) if operation == "list_add" else set()
    return [WriteResult(WriteRef(object_name, rid), "rejected", code="LIST_RECORD_MISSING",
                        message=f"{label} has no contact {rid} to put in list {list_id}")
            if rid in missing else WriteResult(WriteRef(object_name, rid), "ok", id=rid)
            for rid in ids]


def list_refused(label: str, list_id: str, error: FatalError) -> tuple[str, str]:
    if error.fields.get("status") == 404:
        return ("LIST_NOT_FOUND", f"{label} has no list {list_id}: fix the track's list in "
                                  "nurture.yaml, then `syncagent errors --retry-code "
                                  "LIST_NOT_FOUND`")
    return (str(error.fields.get("code") or "LIST_REFUSED"),
            f"{label} refused a membership change of list {list_id}: {error.message}")
