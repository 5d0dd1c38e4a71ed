"""What the portal has: its contact properties, read once and kept for a while.

``salesforceleadid`` and ``salesforcecontactid`` exist only where HubSpot's own Salesforce
integration is installed (API-FACTS.md, "Salesforce-linked properties"): the agent writes them
only when this says they exist. Without the ``crm.schemas.contacts.read`` scope the answer is
"unknown" (None) and such optional properties are not written. A read can travel to the next
process (``facts`` and ``adopt``); a write refused for a property that is gone reads again.

A read's age is judged at the start of a cycle only (``missing_required``, the preflight of a
cycle that writes): one older than ``SCHEMA_TTL`` is read again there, so an integration
installed meanwhile is seen by the next cycle. Within a cycle the read it started with stands,
however long the cycle runs: a backfill of hours would otherwise read the properties again for
nothing but the time it took (issue 18: every operation at its minimum, one read a process).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connectors.base import WriteResult
from connectors.hubspot import errors
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.profile import OUTPUTS
from syncagent.errors import FatalError

log = structlog.get_logger(__name__)

#: The agent's own contact properties (set-up creates them): every cycle writes them.
REQUIRED_PROPERTIES = tuple(OUTPUTS[part] for part in ("grade", "score", "segment", "reasons",
                                                        "track", "mql_date", "stage"))
DOCTOR_HINT = ("Run `syncagent doctor` to list what the portal lacks, then create the "
               "properties (`syncagent setup --apply`, or by hand in the 'syncagent' group).")

#: how old a read may be when a cycle starts (an integration installed meanwhile is seen)
SCHEMA_TTL = timedelta(minutes=15)
#: a write refused with this code names a property the portal no longer has
GONE_CODE = "PROPERTY_DOESNT_EXIST"


class PortalSchema:
    def __init__(self, client: HubSpotClient,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.client = client
        self._clock = clock
        self._names: frozenset[str] | None = None
        self._read_at: datetime | None = None
        self._unsaved = False                   # read from the portal since facts() last
        self.unreadable: str | None = None     # why the properties could not be read

    def contact_properties(self) -> frozenset[str] | None:
        """Names of the portal's contact properties; None when the app may not read them.
        The read at hand whatever its age (``missing_required`` judges age, at a cycle's
        start); read now only when there is none, or a refused write dropped it."""
        if self._read_at is None:
            self._read()
        return self._names

    def _read(self) -> None:
        try:
            data = self.client.properties("contacts")
        except errors.MissingScopes as exc:
            log.warning("hubspot.properties_unreadable", **exc.as_dict())
            self.unreadable, self._names = exc.message, None
        else:
            self.unreadable = None
            self._names = frozenset(str(p.get("name")) for p in data.get("results") or [])
        self._read_at, self._unsaved = self._clock(), True

    def _stale(self) -> bool:
        """No read, or one older than SCHEMA_TTL (or from the future: a clock set back)."""
        return self._read_at is None or not (
            timedelta(0) <= self._clock() - self._read_at < SCHEMA_TTL)

    def facts(self) -> dict[str, Any] | None:
        """What the last read said, JSON-safe (names only), or None when nothing was read
        from the portal since the last call."""
        if not self._unsaved or self._read_at is None:
            return None
        self._unsaved = False
        return {"read_at": self._read_at.isoformat(), "unreadable": self.unreadable,
                "names": sorted(self._names) if self._names is not None else None}

    def adopt(self, facts: Mapping[str, Any]) -> None:
        """Take what another process read (``facts()``) unless this read is newer."""
        try:
            at = datetime.fromisoformat(facts["read_at"])
            names = facts["names"]
            found = None if names is None else frozenset(str(n) for n in names)
        except (KeyError, TypeError, ValueError):
            return                              # malformed: read again
        if at.tzinfo is None or (self._read_at is not None and self._read_at >= at):
            return
        self._names, self._read_at = found, at
        self.unreadable = str(facts.get("unreadable")) if found is None else None

    def after_refusals(self, results: Iterable[WriteResult]) -> None:
        """A write refused for a property the portal lacks: read the properties again next
        time (they were deleted since the last read, perhaps while no process ran)."""
        if self._read_at is not None and any(r.code == GONE_CODE for r in results):
            log.info("hubspot.schema_refresh", reason="write refused")
            self._read_at = None

    def missing_required(self) -> list[str]:
        """The agent's properties the portal lacks ([] when they exist or cannot be read:
        without the schema scope the writes themselves will say). A cycle's start: a stale
        read is read again here, and then stands for the whole cycle."""
        if self._stale():
            self._read()
        names = self._names
        if names is None:
            return []
        return [name for name in REQUIRED_PROPERTIES if name not in names]


def preflight_error(missing: list[str]) -> FatalError:
    """One clear error for a portal that is not set up for the agent."""
    return FatalError(
        f"hubspot: the portal is not set up for syncagent: {len(missing)} contact "
        f"propert{'y' if len(missing) == 1 else 'ies'} it writes do not exist: "
        f"{', '.join(missing)}", hint=DOCTOR_HINT, system="hubspot", missing=missing)
