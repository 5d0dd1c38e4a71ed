"""The Metadata API's SOAP endpoint: ``POST /services/Soap/m/{version}/``.

One call per request: ``createMetadata``, ``updateMetadata``, ``upsertMetadata`` and
``readMetadata`` over the components of ``metadata.py``, and ``deploy`` /
``checkDeployStatus`` of ``deploy.py``. The session header is checked and the call counted
as an API request, as Salesforce does.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html import escape

from syncagent.sandbox.salesforce.deploy import check_deploy_status, deploy
from syncagent.sandbox.salesforce.metadata import (
    MAX_COMPONENTS,
    READERS,
    SAVERS,
    XSI_NS,
    Md,
    MetadataError,
    envelope,
    fault,
    local_name,
    to_md,
    to_xml,
)
from syncagent.sandbox.salesforce.org import SalesforceContext, SalesforceOrg


def _result(full_name: str, error: MetadataError | None, created: bool | None) -> Md:
    """A SaveResult (or UpsertResult when ``created`` is given) of one component."""
    out: Md = {}
    if created is not None:
        out["created"] = created and error is None
    if error is not None:
        out["errors"] = {"fields": error.field, "message": error.message,
                         "statusCode": error.code}
    out["fullName"] = full_name
    out["success"] = error is None
    return out


MODES = {"createMetadata": "create", "updateMetadata": "update", "upsertMetadata": "upsert"}


def _save_all(org: SalesforceOrg, operation: str, call: ET.Element) -> str:
    mode = MODES[operation]
    results = []
    for element in call:
        if local_name(element.tag) != "metadata":
            continue
        md_type = local_name(element.get(f"{{{XSI_NS}}}type", "")).rsplit(":", 1)[-1]
        md = to_md(element)
        md = md if isinstance(md, dict) else {}
        full_name = str(md.get("fullName") or "")
        saver = SAVERS.get(md_type)
        try:
            if saver is None:
                raise MetadataError("INVALID_TYPE", f"the sandbox does not serve metadata "
                                    f"type {md_type or '(none)'}")
            created = saver(org, md, mode)
            results.append(_result(full_name, None, created if mode == "upsert" else None))
        except MetadataError as error:
            results.append(_result(full_name, error, False if mode == "upsert" else None))
    return to_xml("result", results)


def _read(org: SalesforceOrg, call: ET.Element) -> str:
    md_type = ""
    names = []
    for element in call:
        if local_name(element.tag) == "type":
            md_type = (element.text or "").strip()
        elif local_name(element.tag) == "fullNames":
            names.append((element.text or "").strip())
    reader = READERS.get(md_type)
    records = []
    for name in names:
        md = reader(org, name) if reader is not None else None
        inner = "".join(to_xml(k, v) for k, v in (md or {}).items())
        records.append(f'<records xsi:type="{escape(md_type)}">{inner}</records>')
    return f"<result>{''.join(records)}</result>"


def _session_refusal(ctx: SalesforceContext, root: ET.Element) -> tuple[int, str] | None:
    """The SessionHeader must carry a live session; the call counts as an API request."""
    org = ctx.sf
    session_id = next((e.text or "" for e in root.iter() if local_name(e.tag) == "sessionId"), "")
    if session_id.strip() not in org.sessions:
        return fault("INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: "
                     "Illegal Session")
    now = ctx.clock.now()
    if org.usage.used(now) >= ctx.faults.profile.salesforce_daily_quota:
        return fault("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    org.sessions[session_id.strip()] += 1
    org.usage.add(now)
    return None


def metadata_call(ctx: SalesforceContext, body: bytes) -> tuple[int, str]:
    """POST /services/Soap/m/{version}/: (status, XML). Callers hold the sandbox lock."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as error:
        return fault("INVALID_XML", f"the request is not XML: {error}")
    refusal = _session_refusal(ctx, root)
    if refusal is not None:
        return refusal
    soap_body = next((e for e in root if local_name(e.tag) == "Body"), None)
    call = soap_body[0] if soap_body is not None and len(soap_body) else None
    if call is None:
        return fault("INVALID_XML", "the SOAP Body is empty")
    operation = local_name(call.tag)
    if operation in MODES:
        components = [e for e in call if local_name(e.tag) == "metadata"]
        if len(components) > MAX_COMPONENTS:
            return fault("LIMIT_EXCEEDED", f"At most {MAX_COMPONENTS} components per call")
        if len({e.get(f"{{{XSI_NS}}}type", "").rsplit(":", 1)[-1] for e in components}) > 1:
            return fault("INVALID_TYPE", "All components in one call must be of the same "
                         "type")
        answer = _save_all(ctx.sf, operation, call)
    elif operation == "readMetadata":
        answer = _read(ctx.sf, call)
    elif operation in ("deploy", "checkDeployStatus"):
        try:
            answer = deploy(ctx.sf, call) if operation == "deploy" else \
                check_deploy_status(ctx.sf, call)
        except MetadataError as error:
            return fault(error.code, error.message)
    else:
        return fault("INVALID_OPERATION", f"the sandbox does not serve {operation}")
    return 200, envelope(f"<{operation}Response>{answer}</{operation}Response>")
