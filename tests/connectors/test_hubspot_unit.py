"""HubSpot error classification and normalisation with plain data (no server)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import urllib3

from connectors.hubspot import errors, streams
from syncagent.errors import (
    AuthError,
    FatalError,
    LockContention,
    QuotaExhausted,
    RateLimited,
    RemoteTimeout,
    ServerError,
)


def _body(policy: str, message: str) -> str:
    return json.dumps({"status": "error", "message": message, "errorType": "RATE_LIMIT",
                       "policyName": policy})


def test_ten_secondly_429_waits_for_the_window_and_retries() -> None:
    error = errors.classify(429, _body("TEN_SECONDLY_ROLLING", "ten_secondly_rolling"), {},
                            operation="batch_update")
    assert isinstance(error, RateLimited) and error.retry_after == 10.0


def test_search_secondly_429_is_a_short_wait() -> None:
    error = errors.classify(429, _body("SECONDLY", "You have reached your secondly limit."),
                            {}, operation="search")
    assert isinstance(error, RateLimited) and error.retry_after == 1.0


def test_daily_429_stops_with_a_clear_status_and_is_not_retryable() -> None:
    error = errors.classify(429, _body("DAILY", "daily"), {}, operation="search")
    assert isinstance(error, QuotaExhausted)
    assert "daily" in error.hint.lower()


def test_retry_after_header_wins_over_the_policy_default() -> None:
    error = errors.classify(429, _body("TEN_SECONDLY_ROLLING", "x"), {"Retry-After": "3"},
                            operation="search")
    assert error.retry_after == 3.0       # type: ignore[attr-defined]


@pytest.mark.parametrize("status,cls", [(423, LockContention), (500, ServerError),
                                        (503, ServerError), (401, AuthError),
                                        (400, errors.Refused), (409, errors.Refused),
                                        (404, FatalError)])
def test_status_table(status: int, cls: type) -> None:
    assert type(errors.classify(status, "{}", None, operation="x")) is cls


def test_any_sdk_exception_class_is_classified_by_status_not_class() -> None:
    from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
    from hubspot.crm.objects.exceptions import ApiException as ObjectsApiException

    for exc_cls in (ContactsApiException, ObjectsApiException):
        exc = exc_cls(status=503, reason="Service Unavailable")
        assert isinstance(errors.translate(exc, operation="search"), ServerError)


def test_transport_failures_are_remote_timeouts() -> None:
    exc = urllib3.exceptions.ReadTimeoutError(None, "/crm", "read timed out")  # type: ignore[arg-type]
    assert isinstance(errors.translate(exc, operation="search"), RemoteTimeout)
    reset = urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError())
    assert isinstance(errors.translate(reset, operation="search"), RemoteTimeout)


@pytest.mark.parametrize("props,kind", [
    ({"hs_call_disposition": streams.CONNECTED_DISPOSITION}, "call_connected"),
    ({"hs_call_disposition": "73a0d17f-1163-4015-bdd5-ec830791da20"}, "call_attempted"),
])
def test_call_dispositions_map_to_the_vocabulary(props: dict[str, str], kind: str) -> None:
    assert streams.engagement_kind("calls", props) == kind


@pytest.mark.parametrize("outcome,title,kind", [
    ("COMPLETED", "Demo", "demo_completed"), ("COMPLETED", "Intro", "meeting_completed"),
    ("SCHEDULED", "Demo", "meeting_set"), ("NO_SHOW", "Demo", None)])
def test_meeting_outcomes_map_to_the_vocabulary(outcome: str, title: str,
                                                kind: str | None) -> None:
    props = {"hs_meeting_outcome": outcome, "hs_meeting_title": title}
    assert streams.engagement_kind("meetings", props) == kind


def test_web_events_map_to_kinds_with_url_and_form() -> None:
    page = streams.event_activity({"id": "e1", "eventType": "e_visited_page", "objectId": "17",
                                   "occurredAt": "2026-03-01T10:00:00.000Z",
                                   "properties": {"hs_url": "https://x.test/pricing"}})
    form = streams.event_activity({"id": "e2", "eventType": "e_submitted_form",
                                   "objectId": "17", "occurredAt": "2026-03-01T10:00:00.000Z",
                                   "properties": {"hs_form_title": "Demo request"}})
    assert page is not None and page.kind == "page_view"
    assert page.details["url"] == "https://x.test/pricing"
    assert page.person_ref == ("hubspot", "contacts", "17")
    assert form is not None and form.details["form"] == "Demo request"


def test_analytics_fallback_ids_are_stable_so_rereads_add_nothing() -> None:
    when = datetime(2026, 3, 1, tzinfo=UTC)
    row = {"id": "5", "properties": {"hs_analytics_num_page_views": "2",
                                     "num_conversion_events": "1",
                                     "recent_conversion_event_name": "Pricing"}}
    first = {a.id for a in streams.analytics_activities(row, when)}
    row["properties"]["hs_analytics_num_page_views"] = "3"
    second = {a.id for a in streams.analytics_activities(row, when)}
    assert second - first == {"5:page_view:3"}


def test_merged_ids_become_deletes_merged_into_the_survivor() -> None:
    spec = streams.STREAMS[0]
    row = {"id": "10", "properties": {"hs_merged_object_ids": "7;8"}}
    merges = streams.merges_of(spec, row, datetime(2026, 3, 1, tzinfo=UTC))
    assert [(m.id, m.deleted, m.merged_into) for m in merges] == [("7", True, "10"),
                                                                  ("8", True, "10")]
