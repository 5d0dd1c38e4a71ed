"""What a portal has for the agent (doctor) and the set-up calls that add the rest (setup).

Reads: contact properties with their types and options, property groups, the nurture lists by
name, which scopes the private-app token lacks, and whether the events API answers at this
tier. HubSpot answers a call the token has no scope for with 403 ``MISSING_SCOPES`` before it
looks at the body (developers.hubspot.com, "Scopes"), so a write scope is probed with an
empty body that HubSpot refuses with 400 when the scope is there: the probe changes nothing.
Set-up creates the property group, properties (options added, never removed) and MANUAL lists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.hubspot.client import HubSpotClient
from syncagent.errors import AuthError, SyncAgentError

OBJECT = "contacts"


def missing_scope(error: SyncAgentError) -> bool:
    code = str(error.fields.get("code") or "")
    return error.fields.get("status") == 403 and (code == "MISSING_SCOPES"
                                                   or "scope" in error.message.lower())


def _status(error: SyncAgentError) -> int | None:
    status = error.fields.get("status")
    return status if isinstance(status, int) else None


def read_portal(client: HubSpotClient, list_names: Iterable[str]) -> dict[str, Any]:
    """Facts for the doctor; a refused token is a fact too (``error``)."""
    facts: dict[str, Any] = {"scopes_missing": {}, "scopes_unknown": []}
    probes = _probes(client)
    try:
        client.owners_page(None, limit=1)
    except AuthError as error:
        return {"error": error.message, "error_hint": error.hint}
    except SyncAgentError as error:
        _note(facts, "crm.objects.owners.read", error)
    facts["login_detail"] = "token accepted"
    for scope, probe in probes.items():
        try:
            probe()
        except SyncAgentError as error:
            _note(facts, scope, error)
    facts["properties"], facts["groups"] = _properties(client, facts)
    facts["lists"] = _lists(client, list_names)
    facts["events"], facts["events_detail"] = _events(client)
    return facts


def _note(facts: dict[str, Any], scope: str, error: SyncAgentError) -> None:
    if missing_scope(error):
        facts["scopes_missing"][scope] = error.message
    elif _status(error) not in (400, 404, 409, 422):   # refused for its body: scope is there
        facts["scopes_unknown"].append(scope)


def _probes(client: HubSpotClient) -> dict[str, Callable[[], Any]]:
    return {
        "crm.objects.contacts.read": lambda: client.list_page(OBJECT, after=None, limit=1),
        "crm.objects.contacts.write": lambda: client.batch(OBJECT, "update", []),
        "crm.schemas.contacts.read": lambda: client.property_groups(OBJECT),
        "crm.schemas.contacts.write": lambda: client.create_property(OBJECT, {}),
        "crm.lists.read": lambda: client.list_by_name("syncagent doctor probe"),
        "crm.lists.write": lambda: client.create_list({}),
    }


def _properties(client: HubSpotClient, facts: dict[str, Any]
                ) -> tuple[dict[str, Any] | None, list[str] | None]:
    if "crm.schemas.contacts.read" in facts["scopes_missing"]:
        return None, None
    try:
        rows = client.properties(OBJECT).get("results") or []
    except SyncAgentError:
        return None, None
    try:
        groups: list[str] | None = [str(g.get("name")) for g in
                                    client.property_groups(OBJECT).get("results") or []]
    except SyncAgentError:
        groups = None
    return {str(p.get("name")): _property(p) for p in rows if p.get("name")}, groups


def _property(p: Mapping[str, Any]) -> dict[str, Any]:
    meta = p.get("modificationMetadata") or {}
    return {"type": p.get("type"), "fieldType": p.get("fieldType"),
            "label": p.get("label"), "group": p.get("groupName"),
            "options": [str(o.get("value")) for o in p.get("options") or []
                        if isinstance(o, dict) and not o.get("hidden")],
            "option_labels": {str(o.get("value")): o.get("label")
                              for o in p.get("options") or [] if isinstance(o, dict)},
            "read_only": bool(meta.get("readOnlyValue"))}


def _lists(client: HubSpotClient, names: Iterable[str]) -> dict[str, Any] | None:
    found: dict[str, Any] = {}
    for name in dict.fromkeys(names):
        try:
            body = client.list_by_name(name)
        except SyncAgentError as error:
            if missing_scope(error):
                return None
            if _status(error) == 404:
                continue
            raise
        data = body.get("list") or body
        found[name] = {"id": str(data.get("listId") or ""),
                       "processing_type": data.get("processingType")}
    return found


def _events(client: HubSpotClient) -> tuple[bool, str]:
    try:
        client.events_page(occurred_after=datetime.now(UTC), after=None, limit=1)
    except SyncAgentError as error:
        if _status(error) in (403, 404):
            return False, "not available at this portal's tier"
        return False, f"not checked: {error.message}"
    return True, "available"


# --- set-up ------------------------------------------------------------------------------

def create_group(client: HubSpotClient, name: str, label: str) -> None:
    client.create_property_group(OBJECT, {"name": name, "label": label, "displayOrder": -1})


def create_property(client: HubSpotClient, body: Mapping[str, Any]) -> None:
    client.create_property(OBJECT, body)


def set_options(client: HubSpotClient, name: str, options: list[dict[str, Any]]) -> None:
    """Replace the property's options with ``options`` (the caller keeps every old one)."""
    client.update_property(OBJECT, name, {"options": options})


def create_manual_list(client: HubSpotClient, name: str) -> str:
    body = client.create_list({"name": name, "objectTypeId": "0-1",
                               "processingType": "MANUAL"})
    data = body.get("list") or body
    return str(data.get("listId") or "")
