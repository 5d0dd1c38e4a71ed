"""Metadata API ``deploy`` and ``checkDeployStatus``, as ``sf.deploy()`` and
``sf.checkDeployStatus()`` of simple-salesforce send them.

``sf.deploy(zip, sandbox=...)`` posts a hand-written SOAP envelope (base64 ``ZipFile`` plus
``DeployOptions``) to ``.../Soap/m/{version}/deployRequest`` and reads ``result/id`` and
``result/state``; ``checkDeployStatus`` posts to ``.../deployRequest/{id}`` and reads
``status``, ``numberComponent*`` and ``details/componentFailures``. The package is in
Metadata API format (Metadata API Developer Guide, "deploy()" and "DeployResult":
https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_deploy.htm):
``package.xml``, ``objects/{Object}.object`` (a CustomObject whose ``fields`` are custom
fields, ``fullName`` without the object), ``permissionsets/{Name}.permissionset`` and
``standardValueSets/{Name}.standardValueSet`` (a StandardValueSet, such as LeadStatus).

The deployment runs at once (its status is final at the first check). Standard value sets
deploy first, then fields, then permission sets, which may grant them. With
``rollbackOnError`` (simple-salesforce sets it for production orgs, ``sandbox=False``) one
failure undoes every component; ``checkOnly`` validates and undoes everything.
"""

from __future__ import annotations

import base64
import binascii
import io
import secrets
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from syncagent.sandbox.salesforce.metadata import (
    SAVERS,
    Md,
    MetadataError,
    local_name,
    permission_set_id,
    put_values,
    read_value_set,
    to_md,
    to_xml,
)
from syncagent.sandbox.salesforce.org import SalesforceOrg

Undo = Callable[[], None]


@dataclass
class Component:
    kind: str            # CustomField | PermissionSet | StandardValueSet
    full_name: str
    file_name: str
    md: Md


@dataclass
class Deployment:
    """What checkDeployStatus reports for one deployment."""

    deploy_id: str
    successes: list[Component] = field(default_factory=list)
    failures: list[tuple[Component, str]] = field(default_factory=list)
    problem: str | None = None           # a package-level failure (no package.xml, bad zip)
    rolled_back: bool = False

    @property
    def status(self) -> str:
        if self.problem or (self.failures and (self.rolled_back or not self.successes)):
            return "Failed"
        return "SucceededPartial" if self.failures else "Succeeded"


def _option(call: ET.Element, name: str) -> bool:
    for element in call.iter():
        if local_name(element.tag) == name:
            return (element.text or "").strip().lower() == "true"
    return False


def _components(archive: zipfile.ZipFile) -> list[Component]:
    """Every standardValueSets/*.standardValueSet, fields of every objects/*.object, then
    every permissionsets/*.permissionset."""
    value_sets: list[Component] = []
    fields: list[Component] = []
    permission_sets: list[Component] = []
    for name in sorted(archive.namelist()):
        parts = name.split("/")
        if len(parts) < 2 or parts[-1] == "":
            continue
        folder, file_name = parts[-2], parts[-1]
        root = ET.fromstring(archive.read(name))
        if folder == "objects" and file_name.endswith(".object"):
            obj = file_name.removesuffix(".object")
            for element in root:
                if local_name(element.tag) == "fields":
                    md = to_md(element)
                    if isinstance(md, dict):
                        md["fullName"] = f"{obj}.{md.get('fullName', '')}"
                        fields.append(Component("CustomField", md["fullName"], name, md))
        elif folder == "permissionsets" and file_name.endswith(".permissionset"):
            md = to_md(root)
            md = md if isinstance(md, dict) else {}
            md["fullName"] = file_name.removesuffix(".permissionset")
            permission_sets.append(Component("PermissionSet", md["fullName"], name, md))
        elif folder == "standardValueSets" and file_name.endswith(".standardValueSet"):
            md = to_md(root)
            md = md if isinstance(md, dict) else {}
            md["fullName"] = file_name.removesuffix(".standardValueSet")
            value_sets.append(Component("StandardValueSet", md["fullName"], name, md))
    return value_sets + fields + permission_sets


def _undo_field(org: SalesforceOrg, full_name: str) -> Undo:
    obj_name, _, field_name = full_name.partition(".")
    obj = org.schema.full(obj_name)
    before = obj.field(field_name) if obj is not None else None

    def undo() -> None:
        if obj is None:
            return
        if before is None:
            org.remove_field(obj.name, field_name)
        else:
            org.add_field(obj.name, before)
    return undo


def _undo_permission_set(org: SalesforceOrg, name: str) -> Undo:
    permset_id = permission_set_id(org, name)
    grants = dict(org.schema.grants.get(permset_id, {})) if permset_id else {}

    def undo() -> None:
        current = permission_set_id(org, name)
        if current is None:
            return
        if permset_id is None:
            org.table("PermissionSet").pop(current, None)
            org.schema.set_grants(current, None)
        else:
            org.schema.set_grants(current, grants)
    return undo


def _undo_value_set(org: SalesforceOrg, name: str) -> Undo:
    before = read_value_set(org, name)

    def undo() -> None:
        if before is not None:
            put_values(org, name, [str(v["fullName"]) for v in before["standardValue"]])
    return undo


def _undo_for(org: SalesforceOrg, component: Component) -> Undo:
    """How to take this component's change back (for rollbackOnError and checkOnly)."""
    if component.kind == "CustomField":
        return _undo_field(org, component.full_name)
    if component.kind == "StandardValueSet":
        return _undo_value_set(org, component.full_name)
    return _undo_permission_set(org, component.full_name)


def _apply(org: SalesforceOrg, deployment: Deployment, components: list[Component],
           *, rollback_on_error: bool, check_only: bool) -> None:
    undo: list[Undo] = []
    for component in components:
        step = _undo_for(org, component)
        try:
            SAVERS[component.kind](org, component.md, "upsert")
        except MetadataError as error:
            deployment.failures.append((component, f"{error.code}: {error.message}"))
            continue
        undo.append(step)
        deployment.successes.append(component)
    if check_only or (rollback_on_error and deployment.failures):
        deployment.rolled_back = bool(deployment.failures)
        for step in reversed(undo):
            step()


def deploy(org: SalesforceOrg, call: ET.Element) -> str:
    """The deployResponse body: run the deployment now, answer its id (state Queued)."""
    deployment = Deployment("0Af" + secrets.token_hex(6).upper()[:12] + "AAA")
    zipped = next((e.text or "" for e in call.iter() if local_name(e.tag) == "ZipFile"), "")
    try:
        archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(zipped, validate=True)))
        if not any(n.split("/")[-1] == "package.xml" for n in archive.namelist()):
            deployment.problem = "No package.xml found"
        else:
            _apply(org, deployment, _components(archive),
                   rollback_on_error=_option(call, "rollbackOnError"),
                   check_only=_option(call, "checkOnly"))
    except (binascii.Error, zipfile.BadZipFile, ET.ParseError) as error:
        deployment.problem = f"the package is not a readable zip of metadata files: {error}"
    org.deployments[deployment.deploy_id] = deployment
    return to_xml("result", {"done": False, "id": deployment.deploy_id, "state": "Queued"})


def _detail(component: Component, problem: str | None) -> Md:
    out: Md = {"changed": problem is None, "componentType": component.kind,
               "created": problem is None, "deleted": False, "fileName": component.file_name,
               "fullName": component.full_name}
    if problem is not None:
        out["problem"] = problem
        out["problemType"] = "Error"
    out["success"] = problem is None
    return out


def check_deploy_status(org: SalesforceOrg, call: ET.Element) -> str:
    """The checkDeployStatusResponse body of a deployment (it is always done)."""
    deploy_id = next((e.text or "" for e in call.iter()
                      if local_name(e.tag) == "asyncProcessId"), "").strip()
    deployment = org.deployments.get(deploy_id)
    if not isinstance(deployment, Deployment):
        raise MetadataError("INVALID_ID_FIELD", f"Invalid id: {deploy_id}")
    failures = [_detail(c, p) for c, p in deployment.failures]
    if deployment.problem:
        failures.append({"componentType": "", "fileName": "package.xml",
                         "problem": deployment.problem, "problemType": "Error",
                         "success": False})
    total = len(deployment.successes) + len(deployment.failures)
    result: dict[str, Any] = {
        "done": True, "id": deploy_id, "status": deployment.status,
        "success": deployment.status == "Succeeded",
        "numberComponentErrors": len(failures),
        "numberComponentsDeployed": 0 if deployment.rolled_back else len(deployment.successes),
        "numberComponentsTotal": total, "numberTestErrors": 0, "numberTestsCompleted": 0,
        "numberTestsTotal": 0,
        "details": {"componentFailures": failures,
                    "componentSuccesses": [_detail(c, None) for c in deployment.successes]}}
    if deployment.problem:
        result["stateDetail"] = deployment.problem
    return to_xml("result", result)

