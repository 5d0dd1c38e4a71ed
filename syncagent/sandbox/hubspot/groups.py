"""Property groups of the HubSpot emulator: /crm/v3/properties/{objectType}/groups.

Set-up creates the agent's group before its properties, and a property names an existing
group (``groupName``) or is refused, as HubSpot's properties API does
(developers.hubspot.com/docs/api/crm/properties: "groupName ... the property group the
property belongs to"; the sandbox models the harsher reading, an unknown group is a 400).
Changes are visible to the next read at once.
"""

from __future__ import annotations

from typing import Any

from syncagent.sandbox.hubspot.portal import HubSpotError, HubSpotPortal


def group_json(name: str, label: str, order: int) -> dict[str, Any]:
    return {"name": name, "label": label, "displayOrder": order, "archived": False}


def groups_of(portal: HubSpotPortal, kind: str) -> dict[str, str]:
    portal.store(kind)
    return portal.property_groups.setdefault(kind, {})


def list_groups(portal: HubSpotPortal, kind: str) -> dict[str, Any]:
    return {"results": [group_json(n, label, i)
                        for i, (n, label) in enumerate(groups_of(portal, kind).items())]}


def read_group(portal: HubSpotPortal, kind: str, name: str) -> dict[str, Any]:
    groups = groups_of(portal, kind)
    if name not in groups:
        raise HubSpotError(404, f"Property group {name} does not exist", "OBJECT_NOT_FOUND")
    return group_json(name, groups[name], list(groups).index(name))


def create_group(portal: HubSpotPortal, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    name, label = str(body.get("name") or ""), str(body.get("label") or "")
    if not name or not label:
        raise HubSpotError(400, "A property group needs a name and a label")
    groups = groups_of(portal, kind)
    if name in groups:
        raise HubSpotError(409, f"Property group named '{name}' already exists.",
                           "OBJECT_ALREADY_EXISTS")
    groups[name] = label
    return group_json(name, label, len(groups) - 1)


def require_group(portal: HubSpotPortal, kind: str, name: str) -> None:
    if name not in groups_of(portal, kind):
        raise HubSpotError(400, f"Property group {name} does not exist; create it first "
                           f"(POST /crm/v3/properties/{kind}/groups)", "VALIDATION_ERROR")
