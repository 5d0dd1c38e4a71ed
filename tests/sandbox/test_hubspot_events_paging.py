"""Events paging over the portal's kept paging keys agrees with a full sort, however events
arrive: in order, far out of order, inside an existing event's millisecond, or between the
pages of a walk already under way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from starlette.datastructures import QueryParams

from syncagent.sandbox.common import SandboxClock
from syncagent.sandbox.hubspot import HubSpotPortal
from syncagent.sandbox.hubspot.events import decode_after, events_page
from syncagent.sandbox.hubspot.portal import event_order

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _portal() -> HubSpotPortal:
    return HubSpotPortal(SandboxClock(), tier="enterprise")


def _add(portal: HubSpotPortal, offsets_ms: list[float]) -> None:
    for n, offset in enumerate(offsets_ms):
        portal.add_event("e_visited_page", 1 + n % 3, T0 + timedelta(milliseconds=offset),
                         {"hs_url": f"https://example.com/{n}"})


def _page(portal: HubSpotPortal, after: str | None, descending: bool,
          limit: int) -> tuple[list[str], str | None]:
    params: dict[str, Any] = {"limit": str(limit)}
    if after:
        params["after"] = after
    if descending:
        params["sort"] = "DESCENDING"
    body = events_page(SimpleNamespace(hs=portal, base_url="https://x"),  # type: ignore[arg-type]
                       QueryParams(params))
    nxt = body.get("paging", {}).get("next", {}).get("after")
    return [e["id"] for e in body["results"]], nxt


def _walk(portal: HubSpotPortal, descending: bool, limit: int,
          after: str | None = None) -> list[str]:
    """Every id from ``after`` on, page by page (bounded: a cursor that never moves on
    must fail the test, not hang it)."""
    got: list[str] = []
    for _ in range(len(portal.events) + 2):
        ids, after = _page(portal, after, descending, limit)
        got.extend(ids)
        if after is None:
            return got
    raise AssertionError(f"paging did not end: {len(got)} events served so far")


def _truth(portal: HubSpotPortal, descending: bool) -> list[str]:
    """Every event ordered by a fresh full sort, independent of the portal's kept keys."""
    ordered = sorted(portal.events, key=event_order, reverse=descending)
    return [e.id for e in ordered]


def _assert_walks_agree(portal: HubSpotPortal) -> None:
    for descending in (False, True):
        for limit in (1, 3, 1000):
            assert _walk(portal, descending, limit) == _truth(portal, descending)


def test_in_order_arrival_pages_like_a_full_sort() -> None:
    portal = _portal()
    _add(portal, [n * 7.0 for n in range(40)])
    _assert_walks_agree(portal)
    _add(portal, [400.0 + n for n in range(10)])  # still in order: keys only extended
    _assert_walks_agree(portal)


def test_far_out_of_order_arrival_pages_like_a_full_sort() -> None:
    portal = _portal()
    _add(portal, [1000.0 + n * 5 for n in range(30)])
    _assert_walks_agree(portal)  # keys built for the in-order list
    _add(portal, [-50_000.0, 1012.0, -3.0, 99_999.0, 1000.5])
    _assert_walks_agree(portal)
    _add(portal, [200_000.0 + n for n in range(5)])  # in order again after a re-sort
    _assert_walks_agree(portal)


def test_arrival_inside_an_existing_events_millisecond() -> None:
    """A later id in an earlier event's millisecond sorts after it but before the next
    millisecond: out of order by id although not by time."""
    portal = _portal()
    _add(portal, [0.0, 10.0, 20.0, 30.0])
    _assert_walks_agree(portal)
    _add(portal, [10.4, 10.9, 0.2])
    _assert_walks_agree(portal)


def test_a_cursor_taken_before_new_events_resumes_after_its_key() -> None:
    portal = _portal()
    _add(portal, [n * 10.0 for n in range(20)])
    first, after = _page(portal, None, descending=False, limit=8)
    last, before = _page(portal, None, descending=True, limit=8)
    assert after is not None and before is not None
    assert (first, last) == (_truth(portal, False)[:8], _truth(portal, True)[:8])
    _add(portal, [5.0, 75.0, 75.3, 1_000.0, -1_000.0, 190.0])
    forward_key, backward_key = decode_after(after), decode_after(before)
    everything = sorted(portal.events, key=event_order)
    assert _walk(portal, False, 3, after) == [
        e.id for e in everything if event_order(e) > forward_key]
    assert _walk(portal, True, 3, before) == [
        e.id for e in reversed(everything) if event_order(e) < backward_key]
