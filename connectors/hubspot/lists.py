"""Nurture list membership: lists named in nurture.yaml, resolved to the portal's ids.

List ids are assigned by the portal, so mappings name lists and the agent looks each up once
per connector (lists v3 ``GET /crm/v3/lists/object-type-id/0-1/name/{name}``). Membership
writes work only on MANUAL and SNAPSHOT lists (developers.hubspot.com, lists v3 "Add records
to a list": "This endpoint only works for lists that have a processingType of MANUAL or
SNAPSHOT"): a DYNAMIC list, or a name no list has, rejects the rows with a code that says so,
and the other lists go on.
"""

from __future__ import annotations

from collections.abc import Sequence

from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.limits import LIST_MEMBERSHIP_MAX
from syncagent.errors import FatalError, RecordRejected

WRITABLE_TYPES = frozenset({"MANUAL", "SNAPSHOT"})


class ListMemberships:
    """Resolves list names (cached) and adds/removes members in chunks of 1,000 ids."""

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client
        self._ids: dict[str, str] = {}

    def list_id(self, name: str) -> str:
        """The portal's id of the list named ``name``; RecordRejected when it cannot be
        written (missing, DYNAMIC)."""
        folded = name.casefold()
        if folded not in self._ids:
            self._ids[folded] = self._lookup(name)
        return self._ids[folded]

    def _lookup(self, name: str) -> str:
        try:
            found = (self.client.list_by_name(name) or {}).get("list") or {}
        except FatalError as exc:
            if exc.fields.get("status") != 404:
                raise
            if name.isdigit():   # nurture.yaml of an older version named list ids
                return name
            raise RecordRejected(
                f"HubSpot has no contact list named '{name}' (a track's hubspot_list in "
                "nurture.yaml)", system="hubspot",
                object_name=f"list:{name}", record_id=None, code="LIST_NOT_FOUND",
                hint=f"Create a MANUAL contact list named '{name}' in HubSpot (or run "
                     "`syncagent setup --apply`), or fix hubspot_list in "
                     "mappings/nurture.yaml.") from None
        kind = str(found.get("processingType") or "")
        if kind not in WRITABLE_TYPES:
            raise RecordRejected(
                f"HubSpot list '{name}' (a track's hubspot_list in nurture.yaml) is "
                f"{kind or 'of unknown type'}: members can be added and removed only on "
                "MANUAL or SNAPSHOT lists", system="hubspot",
                object_name=f"list:{name}", record_id=None, code="LIST_NOT_MANUAL",
                hint=f"Point the track at a MANUAL list, or convert '{name}' to a static list.")
        return str(found["listId"])

    def change(self, name: str, *, add: Sequence[str] = (),
               remove: Sequence[str] = ()) -> dict[str, list[str]]:
        """Add/remove contacts (one call per 1,000 ids); HubSpot's answer lists merged."""
        list_id = self.list_id(name)
        merged: dict[str, list[str]] = {}
        add, remove = list(add), list(remove)
        while add or remove:
            chunk_add, add = add[:LIST_MEMBERSHIP_MAX], add[LIST_MEMBERSHIP_MAX:]
            room = LIST_MEMBERSHIP_MAX - len(chunk_add)
            chunk_remove, remove = remove[:room], remove[room:]
            data = self.client.change_list(list_id, chunk_add, chunk_remove)
            for key, values in (data or {}).items():
                if isinstance(values, list):
                    merged.setdefault(key, []).extend(str(v) for v in values)
        return merged
