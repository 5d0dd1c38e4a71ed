"""The Metadata API's file-based ``deploy`` and ``checkDeployStatus``, as simple-salesforce's
``sf.deploy(zipfile)`` and ``sf.checkDeployStatus(id)`` send them.

``deploy`` takes a base64 zip holding ``package.xml`` and, in the Metadata API file format,
``objects/<Object>.object`` (a ``CustomObject`` whose ``fields`` are the custom fields) and
``permissionsets/<Name>.permissionset``; it answers an ``AsyncResult`` (id, state ``Queued``).
``checkDeployStatus`` answers the ``DeployResult``: ``status`` Succeeded or Failed,
``numberComponentsTotal``/``Deployed``/``Errors`` and ``details/componentFailures``
(``componentType``, ``fileName``, ``fullName``, ``problemType``, ``problem``). Metadata API
Developer Guide, "deploy()" and "checkDeployStatus()".

Each component goes through the same code as ``upsertMetadata`` (``metadata.py``), fields
before permission sets. With ``rollbackOnError`` (the default outside sandboxes) a real deploy
applies nothing when one component fails; the sandbox checks every component first and, on any
failure, applies none (``checkOnly`` deploys likewise apply nothing).
"""

from __future__ import annotations

import base64
import binascii
import io
import uuid
import weakref
import xml.etree.ElementTree as ET
import zipfile
from typing import Any

from syncagent.sandbox.salesforce import metadata as md
from syncagent.sandbox.salesforce.org import SalesforceOrg

_RESULTS: weakref.WeakKeyDictionary[SalesforceOrg, dict[str, str]] = \
    weakref.WeakKeyDictionary()
Component = tuple[str, str, dict[str, Any]]      # (type, file, metadata)


def _components(archive: zipfile.ZipFile) -> tuple[list[Component], list[dict[str, Any]]]:
    """Fields first, then permission sets; unreadable files become failures."""
    fields: list[Component] = []
    permsets: list[Component] = []
    failures: list[dict[str, Any]] = []
    for name in sorted(archive.namelist()):
        folder, _, file = name.rpartition("/")
        folder = folder.rsplit("/", 1)[-1]
        stem, _, suffix = file.rpartition(".")
        if suffix not in ("object", "permissionset"):
            continue
        try:
            root = ET.fromstring(archive.read(name))
        except ET.ParseError as error:
            failures.append(_failure("CustomObject", name, stem, f"not XML: {error}"))
            continue
        body = md._to_md(root)
        body = body if isinstance(body, dict) else {}
        if folder == "objects" and suffix == "object":
            for item in md._as_list(body.get("fields")):
                if isinstance(item, dict):
                    fields.append(("CustomField", name,
                                   {**item, "fullName": f"{stem}.{item.get('fullName')}"}))
        elif folder == "permissionsets" and suffix == "permissionset":
            permsets.append(("PermissionSet", name, {**body, "fullName": stem}))
    return fields + permsets, failures


def _failure(kind: str, file: str, full_name: str, problem: str) -> dict[str, Any]:
    return {"changed": False, "componentType": kind, "created": False, "deleted": False,
            "fileName": file, "fullName": full_name, "problem": problem,
            "problemType": "Error", "success": False}


def _check(org: SalesforceOrg, components: list[Component]) -> list[dict[str, Any]]:
    """Component failures found without changing the org."""
    failures = []
    for kind, file, body in components:
        try:
            if kind == "CustomField":
                _obj, _field = md._split(str(body.get("fullName")))
                obj = org.schema.full(_obj)
                if obj is None:
                    raise md.MetadataError("INVALID_CROSS_REFERENCE_KEY",
                                           f"no CustomObject named {_obj} found")
                md.field_from_md(body, _field)
            elif not str(body.get("label") or "").strip():
                raise md.MetadataError("REQUIRED_FIELD_MISSING",
                                       "Required field is missing: label")
        except md.MetadataError as error:
            failures.append(_failure(kind, file, str(body.get("fullName")), error.message))
    return failures


def deploy(ctx: Any, call: ET.Element) -> str:
    org: SalesforceOrg = ctx.sf
    encoded = "".join((e.text or "") for e in call if md._local(e.tag) == "ZipFile")
    options: Any = next((md._to_md(e) for e in call if md._local(e.tag) == "DeployOptions"),
                        {})
    check_only = isinstance(options, dict) and md._flag(options, "checkOnly")
    components: list[Component] = []
    try:
        archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(encoded)))
    except (binascii.Error, zipfile.BadZipFile, ValueError):
        failures = [_failure("Package", "package.zip", "package",
                                             "ZipFile is not a base64 zip archive")]
    else:
        with archive:
            components, failures = _components(archive)
    failures += _check(org, components)
    if not failures and not check_only:
        for kind, file, body in components:
            try:
                md.SAVERS[kind](org, body, "upsert")
            except md.MetadataError as error:   # checked above; kept for what _check misses
                failures.append(_failure(kind, file, str(body.get("fullName")), error.message))
    deploy_id = "0Af" + uuid.uuid4().hex[:15]
    _RESULTS.setdefault(org, {})[deploy_id] = _result(deploy_id, components, failures)
    return md._xml("result", {"done": False, "id": deploy_id, "state": "Queued"})


def _result(deploy_id: str, components: list[Component],
            failures: list[dict[str, Any]]) -> str:
    status = "Failed" if failures else "Succeeded"
    details = {"componentFailures": failures} if failures else {}
    return md._xml("result", {
        "checkOnly": False, "details": details or None, "done": True, "id": deploy_id,
        "numberComponentErrors": len(failures),
        "numberComponentsDeployed": 0 if failures else len(components),
        "numberComponentsTotal": len(components), "numberTestErrors": 0,
        "numberTestsCompleted": 0, "numberTestsTotal": 0, "status": status,
        "success": not failures})


def check_status(ctx: Any, call: ET.Element) -> str | None:
    """The stored DeployResult; None when the id is unknown."""
    deploy_id = "".join((e.text or "") for e in call if md._local(e.tag) == "asyncProcessId")
    return _RESULTS.get(ctx.sf, {}).get(deploy_id.strip())
