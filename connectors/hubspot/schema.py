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
from syncagent.errors import FatalError

log = structlog.get_logger(__name__)

#: The agent's own contact properties (set-up creates them): every cycle writes them.
REQUIRED_PROPERTIES = ("lead_grade", "lead_score", "lead_segment", "score_reasons",
                       "nurture_track", "mql_date", "lifecyclestage")
DOCTOR_HINT = ("Run `syncagent doctor` to list what the portal lacks, then create the "
               "properties (`syncagent setup --apply`, or by hand in the 'syncagent' group).")

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

    def missing_required(self) -> list[str]:
        """The agent's properties the portal lacks ([] when they exist or cannot be read:
        without the schema scope the writes themselves will say)."""
        names = self.contact_properties()
        if names is None:
            return []
        return [name for name in REQUIRED_PROPERTIES if name not in names]


def preflight_error(missing: list[str]) -> FatalError:
    """One clear error for a portal that is not set up for the agent."""
    return FatalError(
        f"hubspot: the portal is not set up for syncagent: {len(missing)} contact "
        f"propert{'y' if len(missing) == 1 else 'ies'} it writes do not exist: "
        f"{', '.join(missing)}", hint=DOCTOR_HINT, system="hubspot", missing=missing)
