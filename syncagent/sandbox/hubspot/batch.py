"""Whole-batch refusals of the HubSpot emulator's batch create/update/upsert.

Real HubSpot commonly refuses a whole batch for one invalid input: an e-mail that fails its
check (INVALID_EMAIL), a value that is not an allowed option, a property that does not exist.
The answer is a 400 ``VALIDATION_ERROR`` whose message embeds the property problems
("Property values were not valid: [...]", as quoted from a batch upsert in
github.com/Atlas-Authority/marketing-automation/issues/174) and nothing is written. A batch
create that meets an existing e-mail fails whole with ``CONFLICT`` naming only the first
existing id (github.com/HubSpot/hubspot-api-python/issues/51). API-FACTS.md ("Where real orgs
are stricter") asks for the harsher model; per-record failures of other kinds (unknown ids)
stay 207 Multi-Status.
"""

from __future__ import annotations

import json
from typing import Any

from syncagent.sandbox.hubspot.portal import HubSpotError, HubSpotPortal


def _input_properties(item: dict[str, Any], action: str) -> dict[str, Any]:
    properties = dict(item.get("properties") or {})
    if action == "upsert" and item.get("idProperty") == "email":
        properties.setdefault("email", str(item.get("id", "")))
    return properties


def _input_ref(item: dict[str, Any], action: str) -> str | None:
    """What the error may name an input by: its id (update, upsert); a create has none."""
    if action == "create":
        return None
    return str(item.get("id", ""))


def refuse_invalid_batch(portal: HubSpotPortal, kind: str, action: str,
                         inputs: list[dict[str, Any]]) -> None:
    """Raise the whole-batch 400 when any input has a property problem (nothing is written)."""
    problems: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for item in inputs:
        _, found = portal.validate(kind, _input_properties(item, action))
        ref = _input_ref(item, action) if portal.batch_errors_name_inputs else None
        for problem in found:
            problems.append({k: problem[k] for k in ("isValid", "message", "error", "name")})
            context: dict[str, list[str]] = {"propertyName": [problem["name"]]}
            if ref is not None:
                context["ids"] = [ref]
            errors.append({"message": problem["message"], "code": problem["error"],
                           "context": context})
    if problems:
        raise HubSpotError(400, "Property values were not valid: " + json.dumps(problems),
                           "VALIDATION_ERROR", errors=errors)


def refuse_existing_emails(portal: HubSpotPortal, kind: str,
                           inputs: list[dict[str, Any]]) -> None:
    """A batch create of a contact whose e-mail is taken fails whole: 409 CONFLICT."""
    if kind != "contacts":
        return
    index = portal.store("contacts").by_email
    for item in inputs:
        email = str((item.get("properties") or {}).get("email") or "").lower()
        if email in index:
            raise HubSpotError(409, f"Contact already exists. Existing ID: {index[email]}",
                               "CONFLICT")


def refuse_batch(portal: HubSpotPortal, kind: str, action: str,
                 inputs: list[dict[str, Any]]) -> None:
    """The whole-batch checks, in HubSpot's order: property values, then conflicts."""
    if action not in ("create", "update", "upsert"):
        return
    refuse_invalid_batch(portal, kind, action, inputs)
    if action == "create":
        refuse_existing_emails(portal, kind, inputs)
