"""Run `syncagent setup`'s plan: read what the plan needs, then create what is missing.

Order matters and is fixed: Salesforce fields (and their added values), the Lead Status
values, then the permission
set that grants them (a grant names existing fields), then its assignment; the HubSpot group,
then its properties and options, then the lists. Every step is an upsert or a create of
something the plan found missing, so running setup again finds nothing to do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from syncagent.errors import ConfigError
from syncagent.preflight.checks import OK, Row
from syncagent.preflight.live import Preflight
from syncagent.preflight.requirements import Requirement
from syncagent.preflight.setup_plan import LEAD_STATUS_SET, Action


def hidden_fields(requirements: list[Requirement], facts: dict[str, Any]) -> list[str]:
    """Custom fields describe does not show: the Metadata API says whether they exist."""
    sf = facts.get("salesforce") or {}
    if sf.get("error"):
        return []
    objects = sf.get("objects") or {}
    out = []
    for req in requirements:
        if req.system != "salesforce" or not req.custom or not req.object:
            continue
        names = {n.lower() for n in objects.get(req.object) or {}}
        if req.name.lower() not in names:
            out.append(f"{req.object}.{req.name}")
    return list(dict.fromkeys(out))


def value_sets(rows: list[Row]) -> list[str]:
    """The standard value sets setup adds values to: Lead Status, when a status is missing."""
    return [LEAD_STATUS_SET for row in rows
            if row.key == "salesforce:lead_status" and row.status != OK and row.missing_values]


def read_existing(preflight: Preflight, names: list[str]) -> dict[str, dict[str, Any] | None]:
    """``CustomField`` metadata by full name, and the value sets ``value_sets`` names."""
    if not names:
        return {}
    from connectors.salesforce.orgschema import read_fields, read_value_set

    sets = [n for n in names if n.startswith("StandardValueSet.")]
    client = preflight.salesforce_client()
    try:
        out = read_fields(client, [n for n in names if n not in sets])
        for name in sets:
            out[name] = read_value_set(client, name.partition(".")[2])
        return out
    finally:
        client.close()


def apply(preflight: Preflight, actions: list[Action], echo: Callable[[str], None]) -> int:
    """Apply every action that setup may apply, in plan order; the number applied."""
    todo = [a for a in actions if a.applies]
    sf = [a for a in todo if a.system == "salesforce"]
    hs = [a for a in todo if a.system == "hubspot"]
    if sf:
        _apply_salesforce(preflight, sf, echo)
    if hs:
        _apply_hubspot(preflight, hs, echo)
    return len(todo)


def _apply_salesforce(preflight: Preflight, actions: list[Action],
                      echo: Callable[[str], None]) -> None:
    from connectors.salesforce import orgschema

    client = preflight.salesforce_client()
    try:
        fields = [a for a in actions if a.kind in ("create_field", "add_values")]
        if fields:
            orgschema.save_fields(client, [a.payload["component"] for a in fields])
            for action in fields:
                echo(f"salesforce: {action.target}: {action.detail}")
        for action in actions:
            if action.kind == "add_lead_status":
                orgschema.save_value_set(client, action.payload["component"])
                echo(f"salesforce: {action.target}: {action.detail}")
            elif action.kind == "grant":
                orgschema.save_permission_set(client, action.payload["component"])
                echo(f"salesforce: permission set {action.target} saved")
            elif action.kind == "assign":
                username = preflight.settings.salesforce.username
                if not username:
                    raise ConfigError("setup cannot assign the permission set: "
                                      "salesforce.username is not set",
                                      hint="Set salesforce.username to the integration "
                                           "user's username and run setup --apply again.")
                done = orgschema.assign_permission_set(client, action.target, username)
                echo(f"salesforce: permission set {action.target} "
                     f"{'assigned to' if done else 'already assigned to'} {username}")
    finally:
        client.close()


def _apply_hubspot(preflight: Preflight, actions: list[Action],
                   echo: Callable[[str], None]) -> None:
    from connectors.hubspot import portalschema
    from connectors.hubspot.client import HubSpotClient

    client = HubSpotClient(preflight.settings.hubspot, ca_bundle=preflight.settings.ca_bundle)
    for action in actions:
        if action.kind == "create_group":
            portalschema.create_group(client, action.payload["name"], action.payload["label"])
        elif action.kind == "create_property":
            portalschema.create_property(client, action.payload["body"])
        elif action.kind == "add_options":
            portalschema.set_options(client, action.target, action.payload["options"])
        elif action.kind == "create_list":
            list_id = portalschema.create_manual_list(client, action.target)
            echo(f"hubspot: list {action.target!r} created (id {list_id})")
            continue
        echo(f"hubspot: {action.target}: {action.detail}")
