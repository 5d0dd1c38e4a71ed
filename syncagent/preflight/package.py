"""The Salesforce half of the set-up plan as a Metadata API package, for admins who deploy
through their own change process (a sandbox org, a change set, `sf project deploy`).

Layout (Metadata API file format, Metadata API Developer Guide, "Deploying and Retrieving
Metadata" and "CustomObject"/"PermissionSet"):

    package.xml                                  the manifest: CustomField, PermissionSet and
                                                 StandardValueSet
    objects/Lead.object                          a CustomObject holding only the new fields
    permissionsets/Syncagent_Integration.permissionset
    standardValueSets/LeadStatus.standardValueSet    Lead Status with the added values

Fields are written whole (an added picklist value is the field with all its values), so a
deploy of the package has the same result as `setup --apply`. Assigning the permission set to
the integration user is not metadata: the admin does it after the deploy.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from syncagent.errors import ConfigError
from syncagent.preflight.setup_plan import Action

MD_NS = "http://soap.sforce.com/2006/04/metadata"


def _xml(name: str, value: Any, indent: str) -> str:
    """Elements in alphabetical order of their names, as Salesforce retrieves them."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "".join(_xml(name, item, indent) for item in value)
    if isinstance(value, dict):
        inner = "".join(_xml(k, value[k], indent + "    ") for k in sorted(value))
        return f"{indent}<{name}>\n{inner}{indent}</{name}>\n"
    text = ("true" if value else "false") if isinstance(value, bool) else escape(str(value))
    return f"{indent}<{name}>{text}</{name}>\n"


def _document(root: str, body: dict[str, Any]) -> str:
    inner = "".join(_xml(k, body[k], "    ") for k in sorted(body))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{MD_NS}">\n{inner}'
            f"</{root}>\n")


def package_files(actions: list[Action], api_version: str) -> dict[str, str]:
    """Relative path -> file text for the Salesforce actions setup may apply."""
    fields: dict[str, list[dict[str, Any]]] = {}
    members: list[str] = []
    permission_sets: dict[str, dict[str, Any]] = {}
    value_sets: dict[str, dict[str, Any]] = {}
    for action in actions:
        if action.system != "salesforce" or not action.applies:
            continue
        component = dict(action.payload.get("component") or {})
        if action.kind in ("create_field", "add_values"):
            full_name = str(component.pop("fullName"))
            obj, _, name = full_name.partition(".")
            fields.setdefault(obj, []).append({"fullName": name, **component})
            members.append(full_name)
        elif action.kind == "grant":
            name = str(component.pop("fullName"))
            permission_sets[name] = component
        elif action.kind == "add_lead_status":
            value_sets[str(component.pop("fullName"))] = component
    files = {f"objects/{obj}.object": _document("CustomObject", {"fields": items})
             for obj, items in sorted(fields.items())}
    for name, body in permission_sets.items():
        files[f"permissionsets/{name}.permissionset"] = _document("PermissionSet", body)
    for name, body in value_sets.items():
        files[f"standardValueSets/{name}.standardValueSet"] = _document("StandardValueSet",
                                                                        body)
    types = []
    if members:
        types.append({"members": sorted(members), "name": "CustomField"})
    if permission_sets:
        types.append({"members": sorted(permission_sets), "name": "PermissionSet"})
    if value_sets:
        types.append({"members": sorted(value_sets), "name": "StandardValueSet"})
    files["package.xml"] = _document("Package", {"types": types, "version": api_version})
    return files


def write_package(directory: Path, files: dict[str, str]) -> list[Path]:
    written = []
    try:
        for relative, text in sorted(files.items()):
            path = directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    except OSError as error:
        raise ConfigError(f"cannot write the package to {directory}: {error.strerror}",
                          hint="Pick a folder you can write to.") from None
    return written
