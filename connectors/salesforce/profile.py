"""Salesforce as the pipeline sees it: Leads and Contacts are people, Users and Accounts are
the CRM reps work in, and a HubSpot-only person who reaches MQL gets a Lead."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from connectors.profile import (
    AccountFields,
    CrmOfRecord,
    CrossId,
    PersonCreate,
    PersonObject,
    SystemProfile,
    TaskSpec,
    UserFields,
    iso_wire,
)
from connectors.registry import register
from connectors.salesforce.limits import COLLECTION_MAX, QUERY_PAGE

SYSTEM = "salesforce"
USER_ID_PREFIX = "005"        # every User id starts with it (queues do not)
# The external id that makes creating a Lead for a HubSpot-only person idempotent.
EXTERNAL_ID = "Syncagent_Id__c"
PLACEHOLDER = "[not provided]"  # Salesforce requires LastName and Company on a Lead

# The decision's parts as the org names them (the agent's custom fields, and the owner).
OUTPUTS = {"grade": "Lead_Grade__c", "score": "Lead_Score__c", "stage": "Lifecycle_Stage__c",
           "segment": "Segment__c", "reasons": "Score_Reasons__c", "mql_date": "MQL_Date__c",
           "track": "Nurture_Track__c", "owner": "OwnerId"}


def connect(settings: Any, usage: Mapping[str, Any],
            mapped: Mapping[str, Sequence[str]]) -> Any:
    """The connector for ``settings``; ``mapped``: fields.yaml's fields by object."""
    from connectors.salesforce.connector import SalesforceConnector
    from connectors.salesforce.streams import with_mapped_fields

    return SalesforceConnector.from_settings(
        settings, budget_history=usage.get("hours"),
        stream_table=with_mapped_fields({name: list(fields) for name, fields in mapped.items()}))


def machine_owners(settings: Any) -> Iterable[str]:
    return [settings.salesforce.username or "", *settings.salesforce.unassigned_owners]


PROFILE = register(SystemProfile(
    system=SYSTEM, label="Salesforce",
    person_objects=(PersonObject("Contact", "Email", match_rank=0),
                    PersonObject("Lead", "Email", match_rank=1)),
    outputs=OUTPUTS, batch_size=COLLECTION_MAX, page_size=QUERY_PAGE,
    human_owned=frozenset({OUTPUTS["owner"], OUTPUTS["track"]}),
    cross_ids=(CrossId("Lead", "ConvertedContactId", (SYSTEM, "Contact")),),
    create=PersonCreate("Lead", when="mql", key="person", key_field=EXTERNAL_ID,
                        defaults={"LastName": PLACEHOLDER, "Company": PLACEHOLDER}),
    read_only_when=("IsConverted",),  # Salesforce refuses updates to converted leads
    crm=CrmOfRecord(
        users=UserFields("User", USER_ID_PREFIX, email="Email", name="Name", active="IsActive",
                         out_of_office="Out_Of_Office__c", territory="Territory__c",
                         manager="ManagerId"),
        accounts=AccountFields("Account", website="Website", owner="OwnerId", name="Name",
                               type="Account.Type"),
        primary_object="Contact", owner_field=OUTPUTS["owner"], track_field=OUTPUTS["track"],
        status_field="Status", disqualified_field="Disqualified_Reason__c",
        converted_field="IsConverted", converted_date_field="ConvertedDate"),
    # Tasks are upserted on Idempotency_Key__c (an external id), 200 to a Collections call.
    # A Task cannot be owned by a queue: its owner is always a user.
    tasks=TaskSpec("Task", subject="Subject", body="Description", due="ActivityDate",
                   priority="Priority", owner="OwnerId",
                   priority_values={"high": "High", "normal": "Normal"},
                   batch_size=COLLECTION_MAX, status="Status", status_open="Not Started",
                   key_field="Idempotency_Key__c", who="WhoId", due_is_date=True),
    created_field="CreatedDate",
    wire=iso_wire, connect=connect, machine_owners=machine_owners))
