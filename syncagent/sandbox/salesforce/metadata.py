"""The Metadata API subset that set-up needs: its components, and the SOAP XML they travel in.

The calls themselves (the SOAP endpoint) are in ``mdapi.py``, file deploys in ``deploy.py``.

``sf.mdapi`` (simple-salesforce 1.12.10) is a zeep client of Salesforce's metadata WSDL: it
POSTs a SOAP envelope to ``https://{instance}/services/Soap/m/{version}/`` with a
``SessionHeader/sessionId`` and one of ``createMetadata``, ``updateMetadata``,
``upsertMetadata`` (each a list of ``metadata`` elements carrying ``xsi:type``) or
``readMetadata`` (a ``type`` and ``fullNames``). Answers follow the Metadata API Developer
Guide (createMetadata():
https://developer.salesforce.com/docs/platform/api-metadata/references/crud-based-calls/meta-createmetadata.html,
upsertMetadata(): .../crud-based-calls/meta-upsertmetadata.html, ReadResult:
https://developer.salesforce.com/docs/platform/api-metadata/references/result-objects/meta-readresult.html):

- ``SaveResult`` / ``UpsertResult`` per component, in request order: ``fullName``,
  ``success``, ``errors`` (``statusCode``, ``message``, ``fields``), ``created`` on upserts;
  the good components are saved when others fail (no AllOrNoneHeader, API 34.0 on); all
  components of a call are of one type; at most 10 components per call;
- ``ReadResult.records``: one element per requested name; a name that does not exist comes
  back as an empty record (no ``fullName``);
- faults (``sf:INVALID_SESSION_ID`` and others) are HTTP 500 SOAP faults.

Supported types: ``CustomField`` (Text, TextArea, LongTextArea, Number, Currency, Percent,
Checkbox, Date, DateTime, Email, Phone, Url, Picklist with a local value set, restricted or
not; ``externalId``, ``unique``, ``required``) and ``PermissionSet`` (label, description,
``fieldPermissions``). A new custom field is visible to no one until a permission set that
grants it is assigned (see ``fls.py``); describe reflects every change at once. And
``StandardValueSet`` ``LeadStatus`` (read and update; see its section below).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from html import escape
from typing import Any

from syncagent.sandbox.salesforce.fls import FieldAccess
from syncagent.sandbox.salesforce.org import SalesforceOrg
from syncagent.sandbox.salesforce.schema import FieldDef

MD_NS = "http://soap.sforce.com/2006/04/metadata"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_COMPONENTS = 10
Md = dict[str, Any]

# Metadata field type -> (emulator type, default length)
TYPES: dict[str, tuple[str, int]] = {
    "Text": ("string", 0), "TextArea": ("textarea", 255), "LongTextArea": ("textarea", 0),
    "Number": ("double", 0), "Currency": ("currency", 0), "Percent": ("percent", 0),
    "Checkbox": ("boolean", 0), "Date": ("date", 0), "DateTime": ("datetime", 0),
    "Email": ("email", 80), "Phone": ("phone", 40), "Url": ("url", 255),
    "Picklist": ("picklist", 255),
}


class MetadataError(Exception):
    """One component's failure: becomes an ``errors`` entry of its result."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


# ---------------------------------------------------------------- XML in and out


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def to_md(element: ET.Element) -> Any:
    """An element as text (a leaf) or a dict of children; repeated children become lists."""
    children = list(element)
    if not children:
        return element.text or ""
    out: Md = {}
    for child in children:
        name, value = local_name(child.tag), to_md(child)
        if name in out:
            out[name] = (out[name] if isinstance(out[name], list) else [out[name]]) + [value]
        else:
            out[name] = value
    return out


def as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _flag(md: Md, name: str) -> bool:
    return str(md.get(name, "false")).strip().lower() == "true"


def to_xml(name: str, value: Any) -> str:
    """Elements for a value: dicts nest, lists repeat, None is left out."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "".join(to_xml(name, item) for item in value)
    if isinstance(value, dict):
        inner = "".join(to_xml(k, v) for k, v in value.items())
        return f"<{name}>{inner}</{name}>"
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape(str(value))}</{name}>"


def envelope(body: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}" xmlns="{MD_NS}" '
            f'xmlns:xsi="{XSI_NS}"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>')


def fault(code: str, message: str) -> tuple[int, str]:
    return 500, envelope(f"<soapenv:Fault><faultcode>sf:{code}</faultcode>"
                         f"<faultstring>{escape(code)}: {escape(message)}</faultstring>"
                         "</soapenv:Fault>")


# ---------------------------------------------------------------- CustomField


def _split(full_name: str) -> tuple[str, str]:
    obj_name, _, field_name = full_name.partition(".")
    if not obj_name or not field_name:
        raise MetadataError("INVALID_FIELD", f"fullName {full_name!r} must be Object.Field__c",
                            "fullName")
    return obj_name, field_name


def _positive(md: Md, name: str, default: int = 0) -> int:
    text = str(md.get(name, "") or "").strip()
    if not text:
        if default:
            return default
        raise MetadataError("FIELD_INTEGRITY_EXCEPTION", f"{name}: You must enter a value",
                            name)
    try:
        value = int(float(text))
    except ValueError:
        raise MetadataError("FIELD_INTEGRITY_EXCEPTION", f"{name}: not a number: {text}",
                            name) from None
    if value <= 0:
        raise MetadataError("FIELD_INTEGRITY_EXCEPTION", f"{name}: must be positive", name)
    return value


def _picklist_values(md: Md) -> tuple[tuple[str, ...], bool]:
    value_set = md.get("valueSet")
    if not isinstance(value_set, dict):
        raise MetadataError("FIELD_INTEGRITY_EXCEPTION", "valueSet: a picklist needs values",
                            "valueSet")
    definition = value_set.get("valueSetDefinition")
    values = [str(v.get("fullName") or "") for v in as_list(
        definition.get("value") if isinstance(definition, dict) else None)
        if isinstance(v, dict)]
    if not values or not all(values):
        raise MetadataError("FIELD_INTEGRITY_EXCEPTION",
                            "valueSet: every value needs a fullName", "valueSet")
    if len({v.lower() for v in values}) != len(values):
        raise MetadataError("DUPLICATE_DEVELOPER_NAME", "valueSet: duplicate value",
                            "valueSet")
    return tuple(values), _flag(value_set, "restricted")


def field_from_md(md: Md, field_name: str) -> FieldDef:
    """A CustomField component -> the emulator's field definition."""
    md_type = str(md.get("type") or "")
    if md_type not in TYPES:
        raise MetadataError("FIELD_INTEGRITY_EXCEPTION", f"type: unsupported or missing field "
                            f"type {md_type!r}", "type")
    label = str(md.get("label") or "").strip()
    if not label:
        raise MetadataError("REQUIRED_FIELD_MISSING", "Required field is missing: label",
                            "label")
    kind, length = TYPES[md_type]
    f = FieldDef(field_name, kind, label, length=length, custom=True,
                 external_id=_flag(md, "externalId"), unique=_flag(md, "unique"),
                 required=_flag(md, "required"))
    if md_type in ("Text", "LongTextArea"):
        limit = 255 if md_type == "Text" else 131_072
        length = _positive(md, "length")
        if length > limit:
            raise MetadataError("FIELD_INTEGRITY_EXCEPTION",
                                f"length: at most {limit} for {md_type}", "length")
        f = replace(f, length=length)
    elif md_type in ("Number", "Currency", "Percent"):
        f = replace(f, precision=_positive(md, "precision", 18),
                    scale=int(str(md.get("scale") or "0")))
    elif md_type == "Checkbox":
        f = replace(f, nillable=False, default=_flag(md, "defaultValue"))
    elif md_type == "Picklist":
        values, restricted = _picklist_values(md)
        f = replace(f, picklist=values, restricted=restricted)
    return f


def field_to_md(obj_name: str, f: FieldDef) -> Md:
    """The emulator's field -> a CustomField component, as readMetadata answers it."""
    md_type = {"string": "Text", "double": "Number", "currency": "Currency",
               "percent": "Percent", "boolean": "Checkbox", "date": "Date",
               "datetime": "DateTime", "email": "Email", "phone": "Phone", "url": "Url",
               "picklist": "Picklist"}.get(f.type, "Text")
    if f.type == "textarea":
        md_type = "LongTextArea" if f.length > 255 else "TextArea"
    md: Md = {"fullName": f"{obj_name}.{f.name}"}
    if md_type == "Checkbox":
        md["defaultValue"] = bool(f.default)
    md["externalId"] = f.external_id
    md["label"] = f.label
    if md_type in ("Text", "LongTextArea"):
        md["length"] = f.length
    if md_type in ("Number", "Currency", "Percent"):
        md["precision"], md["scale"] = f.precision, f.scale
    md["required"] = f.required
    md["type"] = md_type
    if md_type in ("Text", "Number", "Email"):
        md["unique"] = f.unique
    if md_type == "Picklist":
        md["valueSet"] = {"restricted": f.restricted, "valueSetDefinition": {
            "sorted": False, "value": [{"fullName": v, "default": False, "label": v}
                                       for v in f.picklist]}}
    if md_type == "LongTextArea":
        md["visibleLines"] = 3
    return md


def save_field(org: SalesforceOrg, md: Md, mode: str) -> bool:
    """Create, update or upsert one CustomField; True when it was created."""
    obj_name, field_name = _split(str(md.get("fullName") or ""))
    obj = org.schema.full(obj_name)
    if obj is None:
        raise MetadataError("INVALID_CROSS_REFERENCE_KEY",
                            f"In field: fullName - no CustomObject named {obj_name} found",
                            "fullName")
    if not field_name.endswith("__c"):
        raise MetadataError("FIELD_INTEGRITY_EXCEPTION", "The API name of a custom field "
                            f"must end with __c: {field_name}", "fullName")
    existing = obj.field(field_name)
    if existing is not None and not existing.custom:
        raise MetadataError("FIELD_INTEGRITY_EXCEPTION", f"{field_name} is a standard field",
                            "fullName")
    if mode == "create" and existing is not None:
        raise MetadataError("DUPLICATE_DEVELOPER_NAME",
                            f"There is already a field named {existing.name} on {obj.name}.",
                            "fullName")
    if mode == "update" and existing is None:
        raise MetadataError("INVALID_CROSS_REFERENCE_KEY",
                            f"In field: fullName - no CustomField named {obj.name}."
                            f"{field_name} found", "fullName")
    f = field_from_md(md, existing.name if existing is not None else field_name)
    return org.add_field(obj.name, f)


def read_field(org: SalesforceOrg, full_name: str) -> Md | None:
    obj_name, _, field_name = full_name.partition(".")
    obj = org.schema.full(obj_name)
    f = obj.field(field_name) if obj is not None and field_name else None
    if obj is None or f is None or not f.custom:
        return None
    return field_to_md(obj.name, f)


# ---------------------------------------------------------------- PermissionSet


def permission_set_id(org: SalesforceOrg, name: str) -> str | None:
    for rec in org.table("PermissionSet").values():
        if str(rec.get("Name", "")).lower() == name.lower():
            return str(rec["Id"])
    return None


def _field_permissions(org: SalesforceOrg, md: Md) -> list[tuple[str, FieldAccess]]:
    out = []
    for entry in as_list(md.get("fieldPermissions")):
        if not isinstance(entry, dict):
            continue
        full_name = str(entry.get("field") or "")
        obj_name, _, field_name = full_name.partition(".")
        obj = org.schema.full(obj_name)
        f = obj.field(field_name) if obj is not None and field_name else None
        if obj is None or f is None:
            raise MetadataError("INVALID_CROSS_REFERENCE_KEY", "In field: field - no "
                                f"CustomField named {full_name} found", "fieldPermissions")
        access = FieldAccess(_flag(entry, "readable"), _flag(entry, "editable"))
        if access.editable and not access.readable:
            raise MetadataError("FIELD_INTEGRITY_EXCEPTION", f"Permission Edit {full_name} "
                                f"depends on permission(s): Read {full_name}",
                                "fieldPermissions")
        if f.custom:
            out.append((f"{obj.name}.{f.name}", access))
    return out


def save_permission_set(org: SalesforceOrg, md: Md, mode: str) -> bool:
    """Create, update or upsert a PermissionSet; its fieldPermissions are merged in."""
    name = str(md.get("fullName") or "").strip()
    if not name:
        raise MetadataError("REQUIRED_FIELD_MISSING", "Required field is missing: fullName",
                            "fullName")
    label = str(md.get("label") or "").strip()
    if not label:
        raise MetadataError("REQUIRED_FIELD_MISSING", "Required field is missing: label",
                            "label")
    permset_id = permission_set_id(org, name)
    if mode == "create" and permset_id is not None:
        raise MetadataError("DUPLICATE_DEVELOPER_NAME",
                            f"There is already a permission set named {name}.", "fullName")
    if mode == "update" and permset_id is None:
        raise MetadataError("INVALID_CROSS_REFERENCE_KEY",
                            f"no PermissionSet named {name} found", "fullName")
    grants = _field_permissions(org, md)
    created = permset_id is None
    if permset_id is None:
        [permset_id] = org.insert("PermissionSet", [{"Name": name, "Label": label}])
    else:
        org.update("PermissionSet", permset_id, {"Label": label}, by=org.integration_user_id)
    for full_name, access in grants:
        org.schema.grant(permset_id, full_name, access)
    return created


def read_permission_set(org: SalesforceOrg, name: str) -> Md | None:
    permset_id = permission_set_id(org, name)
    if permset_id is None:
        return None
    rec = org.table("PermissionSet")[permset_id]
    permissions = []
    for key, access in sorted(org.schema.grants.get(permset_id, {}).items()):
        obj_name, _, field_name = key.partition(".")
        obj = org.schema.full(obj_name)
        f = obj.field(field_name) if obj is not None else None
        if obj is not None and f is not None:
            permissions.append({"editable": access.editable, "field": f"{obj.name}.{f.name}",
                                "readable": access.readable})
    return {"fullName": rec["Name"], "fieldPermissions": permissions, "label": rec["Label"]}


# ---------------------------------------------------------------- StandardValueSet

# Standard picklists are StandardValueSet components from API 38.0 on, named after the value
# set, not the field (Metadata API Developer Guide, "StandardValueSet" and "StandardValueSet
# Names and Standard Picklist Fields":
# https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_standardvalueset.htm).
# The sandbox serves the one the agent needs: LeadStatus, the values of Lead.Status.
VALUE_SETS = {"leadstatus": ("LeadStatus", "Lead", "Status")}
# The statuses a converted lead may take; the sandbox's convert_lead uses one of them.
CONVERTED_STATUSES = frozenset({"closed - converted", "qualified"})


def _value_set_field(org: SalesforceOrg, full_name: str) -> tuple[str, str, FieldDef]:
    entry = VALUE_SETS.get(full_name.strip().lower())
    obj = org.schema.full(entry[1]) if entry else None
    f = obj.field(entry[2]) if obj is not None and entry else None
    if entry is None or obj is None or f is None:
        raise MetadataError("INVALID_CROSS_REFERENCE_KEY", f"no StandardValueSet named "
                            f"{full_name!r} found (the sandbox serves LeadStatus)", "fullName")
    return entry[0], obj.name, f


def read_value_set(org: SalesforceOrg, full_name: str) -> Md | None:
    try:
        name, _, f = _value_set_field(org, full_name)
    except MetadataError:
        return None
    return {"fullName": name, "sorted": False, "standardValue": [
        {"fullName": v, "converted": v.casefold() in CONVERTED_STATUSES, "default": i == 0,
         "label": v} for i, v in enumerate(f.picklist)]}


def save_value_set(org: SalesforceOrg, md: Md, mode: str) -> bool:
    """Replace a standard picklist's values. A standard value set always exists, so it is
    updated (an upsert too) and never created; the sandbox refuses to drop a value (records
    may hold it) and, for LeadStatus, a set without a converted status."""
    name, _, f = _value_set_field(org, str(md.get("fullName") or ""))
    if mode == "create":
        raise MetadataError("DUPLICATE_DEVELOPER_NAME", f"StandardValueSet {name} already "
                            "exists: standard value sets are updated, never created",
                            "fullName")
    entries = [v for v in as_list(md.get("standardValue")) if isinstance(v, dict)]
    values = [str(v.get("fullName") or "").strip() for v in entries]
    if not values or not all(values):
        raise MetadataError("FIELD_INTEGRITY_EXCEPTION", "standardValue: at least one value, "
                            "each with a fullName", "standardValue")
    if len({v.casefold() for v in values}) != len(values):
        raise MetadataError("DUPLICATE_DEVELOPER_NAME", "standardValue: duplicate value",
                            "standardValue")
    dropped = [v for v in f.picklist if v.casefold() not in {x.casefold() for x in values}]
    if dropped:
        raise MetadataError("FIELD_INTEGRITY_EXCEPTION", "standardValue: the sandbox does not "
                            f"remove values ({', '.join(dropped)})", "standardValue")
    if name == "LeadStatus" and not any(_flag(v, "converted") for v in entries):
        raise MetadataError("FIELD_INTEGRITY_EXCEPTION", "LeadStatus needs at least one "
                            "converted status", "standardValue")
    put_values(org, name, values)
    return False


def put_values(org: SalesforceOrg, full_name: str, values: list[str]) -> None:
    """Set a standard value set's values as they are (a deploy's rollback uses it too)."""
    _, obj_name, f = _value_set_field(org, full_name)
    org.schema.put_field(obj_name, replace(f, picklist=tuple(values)))


Saver = Callable[[SalesforceOrg, Md, str], bool]
Reader = Callable[[SalesforceOrg, str], "Md | None"]
# The metadata types the sandbox serves: the SOAP calls (mdapi.py) and deploys (deploy.py)
SAVERS: dict[str, Saver] = {"CustomField": save_field,
                            "PermissionSet": save_permission_set,
                            "StandardValueSet": save_value_set}
READERS: dict[str, Reader] = {"CustomField": read_field,
                              "PermissionSet": read_permission_set,
                              "StandardValueSet": read_value_set}
