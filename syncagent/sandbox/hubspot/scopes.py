"""Private-app scopes: which scope each HubSpot path needs, and the 403 when it is missing.

A token without a required scope gets 403 with category ``MISSING_SCOPES``, the message
"This app hasn't been granted all required scopes to make this call..." and
``errors[].context.requiredGranularScopes`` (body shape as quoted in
github.com/HubSpot/hubspot-api-nodejs/issues/50 and /issues/268; granular scope names from
API-FACTS.md, "Scopes"). Owners need ``crm.objects.owners.read``; lists ``crm.lists.read`` /
``crm.lists.write``; contacts and the engagement objects the contact scopes; properties
``crm.schemas.contacts.read`` / ``.write``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from syncagent.sandbox.common import HUBSPOT_SCOPES

#: the scopes the agent's features use (a token holding them all can do everything here)
AGENT_SCOPES = HUBSPOT_SCOPES
READ_METHODS = frozenset({"GET", "HEAD"})
# POST paths that only read (search and batch read answer data, change nothing)
_READING_POSTS = ("/search", "/batch/read")


def _rw(method: str, path: str) -> str:
    reading = method in READ_METHODS or (method == "POST" and path.endswith(_READING_POSTS))
    return "read" if reading else "write"


def required_scopes(method: str, path: str) -> tuple[str, ...]:
    """The scopes a call needs (any one of them suffices); () for paths without a scope."""
    path = path.rstrip("/") or "/"
    mode = _rw(method, path)
    if path.startswith("/crm/v3/owners"):
        return ("crm.objects.owners.read",)
    if path.startswith("/crm/v3/lists"):
        return (f"crm.lists.{mode}",)
    if path.startswith("/crm/v3/properties"):
        return (f"crm.schemas.contacts.{mode}",)
    if path.startswith(("/crm/v3/objects", "/crm/v4")):
        return (f"crm.objects.contacts.{mode}",)
    return ()


def missing_scope_body(scopes: tuple[str, ...]) -> dict[str, Any]:
    return {"status": "error",
            "message": "This app hasn't been granted all required scopes to make this call. "
                       "Read more about required scopes here: https://developers.hubspot.com/"
                       "scopes.",
            "correlationId": str(uuid.uuid4()),
            "errors": [{"message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": list(scopes)}}],
            "links": {"scopes": "https://developers.hubspot.com/scopes"},
            "category": "MISSING_SCOPES"}


def check_scopes(method: str, path: str, granted: frozenset[str] | None,
                 ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """The 403 refusal when the token lacks every scope the call accepts; None to go on."""
    if granted is None:
        return None
    needed = required_scopes(method, path)
    if not needed or any(scope in granted for scope in needed):
        return None
    body = json.dumps(missing_scope_body(needed)).encode()
    return 403, [(b"content-type", b"application/json;charset=utf-8")], body
