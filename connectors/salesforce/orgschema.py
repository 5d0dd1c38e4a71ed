"""What an org has for the agent (doctor) and the set-up calls that add the rest (setup).

Reads: the API versions served, today's API allowance, and a describe of each object the
requirements name, in Composite calls (25 describes a call). Describe shows only the fields the
integration user can read, and ``updateable``/``createable`` reflect field-level security
(REST API Developer Guide, "sObject Describe"), so a field missing here is missing *or* hidden.
Set-up goes through the Metadata API (``CustomField``, ``PermissionSet``, the
``StandardValueSet`` of Lead Status; at most 10 components a call) and a
``PermissionSetAssignment`` insert. Nothing here deletes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from connectors.salesforce import errors
from connectors.salesforce.client import SalesforceClient, format_soql
from connectors.salesforce.limits import COMPOSITE_MAX_SUBREQUESTS
from syncagent.errors import FatalError, SyncAgentError

MAX_DESCRIBES = COMPOSITE_MAX_SUBREQUESTS   # one describe per subrequest
MAX_COMPONENTS = 10
_FIELD_KEYS = ("type", "length", "label", "restrictedPicklist", "externalId", "unique",
               "updateable", "createable", "custom")


def read_org(client: SalesforceClient, objects: Iterable[str]) -> dict[str, Any]:
    """Facts for the doctor; a login failure is a fact too (``error`` and ``error_hint``)."""
    s = client.settings
    facts: dict[str, Any] = {"api_version": s.api_version,
                             "budget_share": s.daily_budget_share}
    try:
        facts["versions"] = client.versions()
    except SyncAgentError as error:
        return {**facts, "error": error.message, "error_hint": error.hint}
    facts["login_detail"] = f"{s.auth} login as {s.username or '(the connected app user)'}"
    try:
        daily = client.limits().get("DailyApiRequests") or {}
        facts["limits"] = {"max": daily.get("Max"), "remaining": daily.get("Remaining")}
    except SyncAgentError as error:
        facts["limits_error"] = error.message
    try:
        facts["objects"], facts["describe_errors"] = describe(client, objects)
    except SyncAgentError as error:
        return {**facts, "error": f"describe failed: {error.message}", "error_hint": error.hint}
    return facts


def describe(client: SalesforceClient, objects: Iterable[str]
             ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Field summaries per object (what the doctor compares), and objects that failed."""
    wanted = list(dict.fromkeys(objects))
    out: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for i in range(0, len(wanted), MAX_DESCRIBES):
        chunk = wanted[i:i + MAX_DESCRIBES]
        answers = client.composite([
            {"method": "GET", "referenceId": f"d_{obj}",
             "url": client.data_path(f"sobjects/{obj}/describe")} for obj in chunk])
        by_ref = {a.get("referenceId"): a for a in answers}
        for obj in chunk:
            answer = by_ref.get(f"d_{obj}") or {}
            status = int(answer.get("httpStatusCode", 500))
            if status >= 300:
                failed[obj] = errors.classify(status, answer.get("body"),
                                              operation=f"describe {obj}").message
                out[obj] = {}
                continue
            out[obj] = {f["name"]: _summary(f) for f in (answer.get("body") or {}).get(
                "fields", []) if isinstance(f, dict) and f.get("name")}
    return out, failed


def _summary(entry: Mapping[str, Any]) -> dict[str, Any]:
    summary = {k: entry.get(k) for k in _FIELD_KEYS}
    if entry.get("type") in ("picklist", "multipicklist"):
        summary["picklistValues"] = [{"value": p.get("value"), "active": p.get("active", True)}
                                     for p in entry.get("picklistValues") or []]
    return summary


# --- set-up ------------------------------------------------------------------------------

def read_fields(client: SalesforceClient, full_names: Sequence[str]
                ) -> dict[str, dict[str, Any] | None]:
    """``CustomField`` metadata by full name (None: no such field). The Metadata API sees
    fields that describe hides from the integration user."""
    out: dict[str, dict[str, Any] | None] = {}
    for i in range(0, len(full_names), MAX_COMPONENTS):
        chunk = list(full_names[i:i + MAX_COMPONENTS])
        records = client.metadata_read("CustomField", chunk)
        by_name = {str(r.get("fullName")).lower(): r for r in records if r.get("fullName")}
        for name in chunk:
            out[name] = by_name.get(name.lower())
    return out


def save_fields(client: SalesforceClient, components: Sequence[Mapping[str, Any]]) -> None:
    client.metadata_upsert("CustomField", components)


def read_value_set(client: SalesforceClient, name: str) -> dict[str, Any] | None:
    """A ``StandardValueSet`` (such as ``LeadStatus``, the values of Lead.Status) as the
    Metadata API holds it, with each value's flags (converted, default); None if unknown."""
    records = client.metadata_read("StandardValueSet", [name])
    return next((r for r in records if r.get("fullName")), None)


def save_value_set(client: SalesforceClient, component: Mapping[str, Any]) -> None:
    """Update a standard value set: the component carries every value it keeps."""
    client.metadata_upsert("StandardValueSet", [component], verb="update")


def save_permission_set(client: SalesforceClient, component: Mapping[str, Any]) -> None:
    client.metadata_upsert("PermissionSet", [component])


def assign_permission_set(client: SalesforceClient, permission_set: str, username: str) -> bool:
    """Assign the permission set to the user; False when it already was."""
    permset = _one_id(client, format_soql("SELECT Id FROM PermissionSet WHERE Name = {}",
                                          permission_set))
    user = _one_id(client, format_soql("SELECT Id FROM User WHERE Username = {}", username))
    if not permset or not user:
        raise FatalError(
            f"salesforce: cannot assign permission set {permission_set} to {username}: "
            f"{'the permission set' if not permset else 'the user'} was not found",
            hint="Set salesforce.username to the integration user's username.",
            system="salesforce")
    if _one_id(client, format_soql("SELECT Id FROM PermissionSetAssignment WHERE "
                                   "PermissionSetId = {} AND AssigneeId = {}", permset, user)):
        return False
    client.insert("PermissionSetAssignment", {"PermissionSetId": permset, "AssigneeId": user})
    return True


def _one_id(client: SalesforceClient, soql: str) -> str | None:
    records = client.query(soql).get("records") or []
    return str(records[0]["Id"]) if records else None
