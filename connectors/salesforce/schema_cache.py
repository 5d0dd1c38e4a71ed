"""What the org has: a cached describe of the stream objects, and what follows from it.

A real org refuses a whole query when one selected field does not exist or is not readable by
the integration user (``INVALID_FIELD``), and describe lists only the fields the user can see,
with ``updateable`` reflecting field-level security. So the connector selects only the fields
describe shows, refreshes the describe when a query still meets ``INVALID_FIELD`` (an admin
changed the org), and switches off the feature a missing optional field serves, with a warning,
instead of stopping the pull.

Describes travel in one Composite call (up to 25 objects, counted as one API call).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import structlog

from connectors.salesforce import errors
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.limits import COMPOSITE_MAX_SUBREQUESTS
from syncagent.errors import FatalError

log = structlog.get_logger(__name__)

MAX_DESCRIBES = COMPOSITE_MAX_SUBREQUESTS   # one describe per subrequest

#: Fields without which no sync can run: the outputs every cycle writes and the external ids
#: that make creates idempotent.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "Lead": ("Lead_Grade__c", "Lead_Score__c", "Lifecycle_Stage__c", "Syncagent_Id__c"),
    "Contact": ("Lead_Grade__c", "Lead_Score__c", "Lifecycle_Stage__c", "Syncagent_Id__c"),
    "Task": ("Idempotency_Key__c",),
}

#: Optional fields and the feature each one serves: missing, the feature is off.
FEATURES: dict[tuple[str, str], str] = {
    ("User", "Territory__c"): "territory routing",
    ("User", "Out_Of_Office__c"): "out-of-office routing",
    ("Lead", "Segment__c"): "segment",
    ("Contact", "Segment__c"): "segment",
    ("Lead", "Nurture_Track__c"): "nurture track",
    ("Contact", "Nurture_Track__c"): "nurture track",
    ("Lead", "Score_Reasons__c"): "score reasons",
    ("Contact", "Score_Reasons__c"): "score reasons",
    ("Lead", "MQL_Date__c"): "MQL date",
    ("Contact", "MQL_Date__c"): "MQL date",
    ("Lead", "Disqualified_Reason__c"): "disqualification reasons",
}

DOCTOR_HINT = ("Run `syncagent doctor` to list what the org lacks, then create the fields and "
               "grant the integration user read and edit access to them.")


class SchemaCache:
    """Describe results per object (field name -> describe entry), fetched on demand."""

    def __init__(self, client: SalesforceClient) -> None:
        self.client = client
        self._fields: dict[str, dict[str, dict[str, Any]]] = {}
        self.features_off: dict[str, str] = {}       # feature -> why
        self._warned: set[tuple[str, str]] = set()

    def known(self, obj: str) -> bool:
        return obj in self._fields

    def fields(self, obj: str) -> Mapping[str, dict[str, Any]]:
        return self._fields.get(obj, {})

    def forget(self) -> None:
        """Drop every cached describe: the next load asks the org again."""
        self._fields.clear()

    def load(self, objects: Iterable[str], *, refresh: bool = False) -> None:
        """Describe the objects not cached yet (or all of them with ``refresh``)."""
        wanted = [o for o in dict.fromkeys(objects) if refresh or o not in self._fields]
        for i in range(0, len(wanted), MAX_DESCRIBES):
            chunk = wanted[i:i + MAX_DESCRIBES]
            answers = self.client.composite([
                {"method": "GET", "referenceId": f"describe_{obj}",
                 "url": self.client.data_path(f"sobjects/{obj}/describe")} for obj in chunk])
            by_ref = {a.get("referenceId"): a for a in answers}
            for obj in chunk:
                answer = by_ref.get(f"describe_{obj}") or {}
                status = int(answer.get("httpStatusCode", 500))
                if status >= 300:
                    raise errors.classify(status, answer.get("body"),
                                          operation=f"describe {obj}",
                                          headers=answer.get("httpHeaders"))
                body = answer.get("body") or {}
                self._fields[obj] = {f["name"]: f for f in body.get("fields", [])
                                     if isinstance(f, dict) and f.get("name")}

    def selectable(self, obj: str, wanted: tuple[str, ...]) -> tuple[str, ...]:
        """The wanted fields the org has and the user can read (all of them when ``obj`` was
        never described); each one dropped is warned about once, with its feature."""
        if obj not in self._fields:
            return wanted
        have = {name.lower(): name for name in self._fields[obj]}
        kept = []
        for name in wanted:
            if name.lower() in have:
                kept.append(have[name.lower()])
            else:
                self._dropped(obj, name, "does not exist or is not readable")
        return tuple(kept)

    def writable(self, obj: str, name: str) -> bool:
        """Whether the user can write the field (unknown objects: assume so)."""
        if obj not in self._fields:
            return True
        entry = self._fields[obj].get(name) or next(
            (f for n, f in self._fields[obj].items() if n.lower() == name.lower()), None)
        return bool(entry and (entry.get("updateable") or entry.get("createable")))

    def _dropped(self, obj: str, name: str, why: str) -> None:
        feature = FEATURES.get((obj, name))
        if feature is not None:
            self.features_off.setdefault(feature, f"{obj}.{name} {why}")
        if (obj, name) in self._warned:
            return
        self._warned.add((obj, name))
        log.warning("salesforce.field_unavailable", object=obj, field=name, reason=why,
                    feature_off=feature, hint=DOCTOR_HINT)

    def missing_required(self) -> list[str]:
        """Required fields the org lacks or the user cannot edit (described objects only)."""
        missing = []
        for obj, names in REQUIRED_FIELDS.items():
            for name in names:
                if obj in self._fields and not self.writable(obj, name):
                    missing.append(f"{obj}.{name}")
        return missing


def preflight_error(missing: list[str]) -> FatalError:
    """One clear error for a Salesforce org that is not set up for the agent."""
    return FatalError(
        f"salesforce: the org is not set up for syncagent: {len(missing)} field(s) it writes "
        f"are missing or not editable by the integration user: {', '.join(missing)}",
        hint=DOCTOR_HINT, system="salesforce", missing=missing)
