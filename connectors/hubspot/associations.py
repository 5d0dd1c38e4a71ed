"""Which contacts an engagement is associated with (search results carry no associations).

The v4 batch association read answers 100 engagements a call; a portal without it (404/405)
is read by paging the object list with associations over the id range instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import structlog

from connectors.hubspot import paging
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.limits import ASSOCIATION_BATCH, LIST_PAGE
from syncagent.errors import FatalError

log = structlog.get_logger(__name__)

T = TypeVar("T")


class Associations:
    def __init__(self, client: HubSpotClient) -> None:
        self.client = client
        self._v4_associations: bool | None = None

    def contacts_of(self, object_type: str, ids: list[str]) -> dict[str, list[str]]:
        """Engagement id -> associated contact ids (search results carry no associations)."""
        if not ids:
            return {}
        if self._v4_associations is not False:
            try:
                found: dict[str, list[str]] = {}
                for i in range(0, len(ids), ASSOCIATION_BATCH):
                    data = self.client.associations(object_type, "contacts",
                                                    ids[i:i + ASSOCIATION_BATCH])
                    self._v4_associations = True
                    for r in data.get("results") or []:
                        found[str(r["from"]["id"])] = [str(t["toObjectId"])
                                                       for t in r.get("to") or []]
                return found
            except FatalError as exc:
                if exc.fields.get("status") not in (404, 405):
                    raise
                log.info("hubspot.associations_v4_unavailable", fallback="list scan")
                self._v4_associations = False
        return self._scan(object_type, ids)

    def linked(self, object_type: str, pages: Iterable[tuple[list[str], T]]
               ) -> Iterator[tuple[T, dict[str, list[str]]]]:
        """Each page with the contacts of its engagement ids, in order. The look-ups are
        batched across pages: a call carries a full ASSOCIATION_BATCH of ids whenever that many
        are waiting, so a sweep of n signals costs ceil(n / 1,000) calls, not one or more per
        search page. A page is handed on as soon as all its ids are answered (at most about
        six pages are held)."""
        held: list[tuple[list[str], T]] = []
        waiting: list[str] = []
        found: dict[str, list[str]] = {}
        for ids, page in pages:
            held.append((ids, page))
            waiting.extend(ids)
            while len(waiting) >= ASSOCIATION_BATCH:
                found.update(self.contacts_of(object_type, waiting[:ASSOCIATION_BATCH]))
                waiting = waiting[ASSOCIATION_BATCH:]
            yield from _answered(held, waiting, found)
        if waiting:
            found.update(self.contacts_of(object_type, waiting))
            waiting = []
        yield from _answered(held, waiting, found)

    def _scan(self, object_type: str, ids: list[str]) -> dict[str, list[str]]:
        """Fallback: page the object list (sorted by id, with associations) over the id range."""
        wanted = set(ids)
        high = max(int(i) for i in ids)
        found: dict[str, list[str]] = {}

        def fetch(after: str | None) -> dict[str, Any]:
            return self.client.list_page(object_type, after=after, limit=LIST_PAGE,
                                         properties=("hs_object_id",), associations=("contacts",))

        for data, after in paging.walk(fetch, after=str(min(int(i) for i in ids))):
            for row in data.get("results") or []:
                if str(row["id"]) in wanted:
                    linked = ((row.get("associations") or {}).get("contacts") or {})
                    found[str(row["id"])] = [str(x["id"]) for x in linked.get("results") or []]
            if after is not None and int(after) > high:
                break       # past the last id asked about
        return found


def _answered(held: list[tuple[list[str], T]], waiting: list[str],
              found: dict[str, list[str]]) -> Iterator[tuple[T, dict[str, list[str]]]]:
    """Pop, in order, the held pages none of whose ids is still waiting."""
    pending = set(waiting)
    while held and not pending.intersection(held[0][0]):
        ids, page = held.pop(0)
        yield page, {i: found.pop(i, []) for i in ids}
