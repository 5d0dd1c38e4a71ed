"""What the portal has: its contact properties, read once and kept for a while.

``salesforceleadid`` and ``salesforcecontactid`` exist only where HubSpot's own Salesforce
integration is installed (API-FACTS.md, "Salesforce-linked properties"): the agent writes them
only when this says they exist. Without the ``crm.schemas.contacts.read`` scope the answer is
"unknown" (None) and such optional properties are not written.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from connectors.hubspot import errors
from connectors.hubspot.client import HubSpotClient

log = structlog.get_logger(__name__)

#: how long a read of the properties is trusted (an integration installed meanwhile is seen)
SCHEMA_TTL_SECONDS = 900.0


class PortalSchema:
    def __init__(self, client: HubSpotClient,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self._clock = clock
        self._names: frozenset[str] | None = None
        self._read_at: float | None = None
        self.unreadable: str | None = None     # why the properties could not be read

    def contact_properties(self) -> frozenset[str] | None:
        """Names of the portal's contact properties; None when the app may not read them."""
        now = self._clock()
        if self._read_at is not None and now - self._read_at < SCHEMA_TTL_SECONDS:
            return self._names
        try:
            data = self.client.properties("contacts")
        except errors.MissingScopes as exc:
            log.warning("hubspot.properties_unreadable", **exc.as_dict())
            self.unreadable, self._names = exc.message, None
        else:
            self.unreadable = None
            self._names = frozenset(str(p.get("name")) for p in data.get("results") or [])
        self._read_at = now
        return self._names
