"""The HubSpot client: the only module that imports the hubspot SDK (hubspot-api-client 12).

One SDK object per API, built once (each owns a urllib3 pool, so connections are reused), with
the SDK's own retries off; retries happen in ``retry.py`` around each call. Calls are made with
``_preload_content=False`` so we read the JSON and the ``X-HubSpot-RateLimit-*`` headers of
every answer ourselves. Before each call: the agent's daily budget is checked and the
client-side limiter waits if the ten-second window or the search rate would be exceeded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from hubspot import HubSpot

from connectors.base import ApiCallCounter
from connectors.budget import DailyBudget, RateLimiter, Slot
from connectors.hubspot import errors
from connectors.hubspot.limits import EVENTS_PAGE, LIST_PAGE, OWNERS_PAGE
from connectors.retry import RetryPolicy
from syncagent.errors import ConfigError
from syncagent.settings import HubSpotSettings

log = structlog.get_logger(__name__)

# HubSpot's windows (API-FACTS "Rate limits"): TEN_SECONDLY_ROLLING for every call but search
# (its answers say so: X-HubSpot-RateLimit-Interval-Milliseconds 10000), and search's own
# SECONDLY limit. HubSpot counts a call when it arrives; each call here holds its slot from its
# sending to its answer and a window after that (budget.py RateLimiter.held), so no delay on
# the way can put two calls of one slot in one server window, and the limits are used in full.
# The margin covers the two clocks only: the server counted the call before it answered, so
# its stamp is at or before ours; but its clock may run faster than ours by up to 500 ppm
# (NTP's largest slew, 5 ms in 10 s) and may count in whole milliseconds.
TEN_SECOND_WINDOW = 10.0
SEARCH_WINDOW = 1.0
WINDOW_MARGIN = 0.02


class HubSpotClient:
    """Counted, budgeted, rate-limited access to one portal."""

    def __init__(self, settings: HubSpotSettings, *, ca_bundle: Path | str | None = None,
                 retry: RetryPolicy | None = None, budget: DailyBudget | None = None,
                 calls: ApiCallCounter | None = None,
                 limiter: RateLimiter | None = None,
                 search_limiter: RateLimiter | None = None) -> None:
        if settings.access_token is None:
            raise ConfigError("hubspot.access_token is not set",
                              hint="Set SYNCAGENT_HUBSPOT__ACCESS_TOKEN to a private-app token.")
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.budget = budget or DailyBudget("hubspot", settings.daily_budget_share)
        self.calls = calls or ApiCallCounter("hubspot")
        self.timeout = settings.timeout_seconds
        # the setting until HubSpot's answers say otherwise (_observe)
        self.limiter = limiter or RateLimiter(settings.requests_per_10s,
                                              TEN_SECOND_WINDOW + WINDOW_MARGIN)
        self.search_limiter = search_limiter or RateLimiter(settings.searches_per_second,
                                                            SEARCH_WINDOW + WINDOW_MARGIN)
        config: dict[str, Any] = {"access_token": settings.access_token.get_secret_value(),
                                  "host": settings.base_url.rstrip("/"),
                                  # urllib3 retries off: retry.py is the only retry loop
                                  "retry": False}
        if ca_bundle is not None:
            config["ssl_ca_cert"] = str(ca_bundle)
        sdk = HubSpot(**config)
        self._search = sdk.crm.objects.search_api
        self._batch = sdk.crm.objects.batch_api
        self._basic = sdk.crm.objects.basic_api
        self._owners = sdk.crm.owners.owners_api
        self._properties = sdk.crm.properties.core_api
        self._lists = sdk.crm.lists.memberships_api
        self._list_defs = sdk.crm.lists.lists_api
        self._groups = sdk.crm.properties.groups_api
        self._events = sdk.events.events_api
        self._assoc = sdk.crm.associations.v4.batch_api

    # --- the one call path -----------------------------------------------------------------
    def call(self, operation: str, fn: Callable[[dict[str, Any]], Any], *,
             search: bool = False, resend_unknown: bool = True) -> Any:
        """Run one SDK call under budget, limiter, counter and retry; return decoded JSON.
        ``resend_unknown=False``: a timeout or 5xx is raised at once instead of sent again
        (the caller finds out whether the write landed)."""
        policy = self.retry if resend_unknown else self.retry.refused_only()
        return policy.call(self._attempt, operation, fn, search)

    def _attempt(self, operation: str, fn: Callable[[dict[str, Any]], Any], search: bool) -> Any:
        self.budget.check()
        limiter = self.search_limiter if search else self.limiter
        with limiter.held() as slot:
            raw = self._send(operation, fn, slot, search)
        return json.loads(raw) if raw else None

    def _send(self, operation: str, fn: Callable[[dict[str, Any]], Any], slot: Slot,
              search: bool) -> bytes:
        """Count, spend and send one request; its raw answer. Its rate-limit window runs from
        when the answer's headers are in (the body is read after): HubSpot counted the
        request before it answered."""
        self.calls.add(operation)
        self.budget.spend()
        options = {"_preload_content": False, "_request_timeout": self.timeout}
        try:
            response = fn(options)
        except Exception as exc:  # every failure goes through errors.py
            slot.answered()
            self._observe(getattr(exc, "headers", None), search, slot)
            raise errors.translate(exc, operation=operation) from None
        slot.answered()
        try:
            raw: bytes = response.data
            self._observe(response.headers, search, slot)
        finally:
            response.release_conn()
        return raw

    def _observe(self, headers: Any, search: bool, slot: Slot) -> None:
        if not headers:
            return
        daily = _int(headers.get("X-HubSpot-RateLimit-Daily"))
        remaining = _int(headers.get("X-HubSpot-RateLimit-Daily-Remaining"))
        if daily is not None:
            used = daily - remaining if remaining is not None else None
            self.budget.observe(used, daily)
        if search:
            return      # search answers carry no window headers; any would not be search's
        # HubSpot's own count of the window, "so you can automatically take advantage of
        # future increases" (developer changelog, "Burst limits are increasing for API key
        # authenticated calls"); absent when HubSpot failed to gather it (changelog
        # 2018-11-06): the limiter then goes on with what it knows.
        maximum = _int(headers.get("X-HubSpot-RateLimit-Max"))
        left = _int(headers.get("X-HubSpot-RateLimit-Remaining"))
        interval = _int(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
        foreign = self.limiter.foreign
        self.limiter.observe(
            used=maximum - left if maximum is not None and left is not None else None,
            maximum=maximum, window=interval / 1000 + WINDOW_MARGIN if interval else None,
            at=slot.answered_at)
        if self.limiter.foreign > foreign:
            log.info("hubspot.window_shared", calls=self.limiter.foreign - foreign,
                     remaining=left, maximum=maximum)

    # --- endpoints -------------------------------------------------------------------------
    def search(self, object_type: str, body: Mapping[str, Any]) -> dict[str, Any]:
        api = self._search
        return dict(self.call(f"search_{object_type}", lambda o: api.do_search_with_http_info(
            object_type, dict(body), **o), search=True) or {})

    def batch(self, object_type: str, action: str, inputs: Sequence[Mapping[str, Any]], *,
              resend_unknown: bool = True, **extra: Any) -> dict[str, Any]:
        body = {"inputs": list(inputs), **extra}
        method = getattr(self._batch, f"{action}_with_http_info")
        return dict(self.call(f"batch_{action}_{object_type}",
                              lambda o: method(object_type, body, **o),
                              resend_unknown=resend_unknown) or {})

    def list_page(self, object_type: str, *, after: str | None, limit: int = LIST_PAGE,
                  properties: Sequence[str] = (), associations: Sequence[str] = (),
                  archived: bool = False) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"limit": limit, "archived": archived}
        if after:
            kwargs["after"] = after
        if properties:
            kwargs["properties"] = list(properties)
        if associations:
            kwargs["associations"] = list(associations)
        return dict(self.call(f"list_{object_type}", lambda o: self._basic.get_page_with_http_info(
            object_type, **kwargs, **o)) or {})

    def owners_page(self, after: str | None, limit: int = OWNERS_PAGE) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"limit": limit}
        if after:
            kwargs["after"] = after
        return dict(self.call("owners", lambda o: self._owners.get_page_with_http_info(
            **kwargs, **o)) or {})

    def properties(self, object_type: str) -> dict[str, Any]:
        return dict(self.call("properties", lambda o: self._properties.get_all_with_http_info(
            object_type, **o)) or {})

    def events_page(self, *, occurred_after: datetime | None, after: str | None,
                    limit: int = EVENTS_PAGE) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"object_type": "contact", "limit": limit}
        if occurred_after is not None:
            kwargs["occurred_after"] = occurred_after
        if after:
            kwargs["after"] = after
        return dict(self.call("events", lambda o: self._events.get_page_with_http_info(
            **kwargs, **o)) or {})

    def associations(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, Any]:
        body = {"inputs": [{"id": i} for i in ids]}
        return dict(self.call("associations", lambda o: self._assoc.get_page_with_http_info(
            from_type, to_type, body, **o)) or {})

    def list_by_name(self, name: str) -> dict[str, Any]:
        """The contact list named ``name`` (HubSpot matches names case-insensitively)."""
        api = self._list_defs
        return dict(self.call("list_lookup", lambda o: api.get_by_name_with_http_info(
            name, "0-1", **o)) or {})

    def change_list(self, list_id: str, add: Sequence[str], remove: Sequence[str]
                    ) -> dict[str, Any]:
        body = {"recordIdsToAdd": list(add), "recordIdsToRemove": list(remove)}
        api = self._lists
        return dict(self.call("list_membership", lambda o: api.add_and_remove_with_http_info(
            list_id, body, **o)) or {})

    # --- set-up (doctor and setup) ---------------------------------------------------------
    def property_groups(self, object_type: str) -> dict[str, Any]:
        api = self._groups
        return dict(self.call("property_groups", lambda o: api.get_all_with_http_info(
            object_type, **o)) or {})

    def create_property_group(self, object_type: str, body: Mapping[str, Any]) -> None:
        api = self._groups
        self.call("create_property_group", lambda o: api.create_with_http_info(
            object_type, dict(body), **o))

    def create_property(self, object_type: str, body: Mapping[str, Any]) -> None:
        api = self._properties
        self.call("create_property", lambda o: api.create_with_http_info(
            object_type, dict(body), **o))

    def update_property(self, object_type: str, name: str, body: Mapping[str, Any]) -> None:
        api = self._properties
        self.call("update_property", lambda o: api.update_with_http_info(
            object_type, name, dict(body), **o))

    def create_list(self, body: Mapping[str, Any]) -> dict[str, Any]:
        api = self._list_defs
        return dict(self.call("create_list", lambda o: api.create_with_http_info(
            dict(body), **o)) or {})

    def close(self) -> None:
        """Nothing to release explicitly; pools close with the process."""


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
