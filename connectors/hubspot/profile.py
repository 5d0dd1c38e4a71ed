"""HubSpot as the pipeline sees it: contacts are people (e-mails unique), owners are matched
to Salesforce users by e-mail, nurture tracks are lists, and every value is sent as text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from connectors.hubspot.limits import BATCH_MAX, LIST_MEMBERSHIP_MAX, SEARCH_PAGE
from connectors.profile import (
    CrossId,
    OwnerDirectory,
    PersonCreate,
    PersonObject,
    SystemProfile,
    TaskSpec,
    iso_wire,
)
from connectors.registry import register

SYSTEM = "hubspot"

OUTPUTS = {"grade": "lead_grade", "score": "lead_score", "stage": "lifecyclestage",
           "segment": "lead_segment", "reasons": "score_reasons", "mql_date": "mql_date",
           "track": "nurture_track", "owner": "hubspot_owner_id"}
# HubSpot's lifecyclestage has its own internal values.
STAGES = {"Subscriber": "subscriber", "Inquiry": "lead", "Lead": "lead", "Recycled": "lead",
          "Nurture": "lead", "Disqualified": "other", "MQL": "marketingqualifiedlead",
          "SAL": "salesqualifiedlead", "SQL": "salesqualifiedlead", "Opportunity": "opportunity",
          "Customer": "customer"}
# HubSpot's default lifecycle order; a stage moves forward only unless cleared first.
STAGE_ORDER = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
               "opportunity", "customer", "evangelist", "other")


def wire(value: Any) -> Any:
    """HubSpot takes every property value as text (ISO datetimes with Z, lower-case bools)."""
    if isinstance(value, datetime):
        return iso_wire(value, offset="Z")
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def connect(settings: Any, usage: Mapping[str, Any],
            mapped: Mapping[str, Sequence[str]]) -> Any:
    """The connector for ``settings``; ``mapped``: fields.yaml's properties by object."""
    from connectors.hubspot.connector import HubSpotConnector

    return HubSpotConnector.from_settings(
        settings, budget_history=usage.get("hours"),
        mapped_fields=list(mapped.get("contacts", ())),
        own_writes_seen=usage.get("own_writes"))


PROFILE = register(SystemProfile(
    system=SYSTEM, label="HubSpot",
    person_objects=(PersonObject("contacts", "email", match_rank=2),),
    outputs=OUTPUTS, batch_size=BATCH_MAX, page_size=SEARCH_PAGE, unique_email=True,
    human_owned=frozenset({OUTPUTS["owner"]}),
    stage_values=STAGES, stage_fallback="lead", stage_order=STAGE_ORDER,
    # Written only where HubSpot's own Salesforce integration made these properties.
    cross_ids=(CrossId("contacts", "salesforcecontactid", ("salesforce", "Contact"), True),
               CrossId("contacts", "salesforceleadid", ("salesforce", "Lead"), True)),
    create=PersonCreate("contacts", when="nurture", key="email", key_field="email"),
    owners=OwnerDirectory("owners", "email"),
    list_object="contacts", list_batch_size=LIST_MEMBERSHIP_MAX,
    # No unique property can be made on tasks to upsert by (modelled as the harsher case):
    # the connector guards a retried create itself. Tasks are associated with the contact.
    tasks=TaskSpec("tasks", subject="hs_task_subject", body="hs_task_body",
                   due="hs_timestamp", priority="hs_task_priority", owner="hubspot_owner_id",
                   priority_values={"high": "HIGH", "normal": "MEDIUM"}, batch_size=BATCH_MAX,
                   status="hs_task_status", status_open="NOT_STARTED",
                   association="contacts"),
    created_field="createdate", opportunity_date_field="hs_lifecyclestage_opportunity_date",
    wire=wire, connect=connect))
