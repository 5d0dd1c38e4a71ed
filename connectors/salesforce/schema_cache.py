"""What the org has: a cached describe of the stream objects, and what follows from it.

A real org refuses a whole query when one selected field does not exist or is not readable by
the integration user (``INVALID_FIELD``), and describe lists only the fields the user can see,
with ``updateable`` reflecting field-level security. So the connector selects only the fields
describe shows, refreshes the describe when a query still meets ``INVALID_FIELD`` (an admin
changed the org), and switches off the feature a missing optional field serves, with a warning,
instead of stopping the pull.

Describes travel in one Composite call (up to 25 objects, counted as one API call). A describe
is trusted for ``STALE_AFTER``; what it says can travel to the next process (``facts`` and
``adopt``), so a `sync --once` does not pay a describe that the previous one made minutes ago.
A field removed meanwhile is still noticed: a query or a write refused for it reads the
describe again (see the connector).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connectors.base import WriteResult
from connectors.salesforce import errors
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.limits import COMPOSITE_MAX_SUBREQUESTS
from connectors.salesforce.profile import EXTERNAL_ID, OUTPUTS
from syncagent.errors import FatalError

log = structlog.get_logger(__name__)

MAX_DESCRIBES = COMPOSITE_MAX_SUBREQUESTS   # one describe per subrequest
#: how long a describe is trusted (a field an admin adds meanwhile is seen after this)
STALE_AFTER = timedelta(minutes=15)
#: write refusals that mean the describe was wrong about a field (it is gone or not editable)
SCHEMA_CODES = frozenset({"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE"})

#: Fields without which no sync can run: the outputs every cycle writes and the external ids
#: that make creates idempotent.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "Lead": (OUTPUTS["grade"], OUTPUTS["score"], OUTPUTS["stage"], EXTERNAL_ID),
    "Contact": (OUTPUTS["grade"], OUTPUTS["score"], OUTPUTS["stage"], EXTERNAL_ID),
    "Task": ("Idempotency_Key__c",),
}

#: Optional fields and the feature each one serves: missing, the feature is off.
FEATURES: dict[tuple[str, str], str] = {
    ("User", "Territory__c"): "territory routing",
    ("User", "Out_Of_Office__c"): "out-of-office routing",
    **{(person, OUTPUTS[part]): feature for part, feature in (
        ("segment", "segment"), ("track", "nurture track"), ("reasons", "score reasons"),
        ("mql_date", "MQL date")) for person in ("Lead", "Contact")},
    ("Lead", "Disqualified_Reason__c"): "disqualification reasons",
}

DOCTOR_HINT = ("Run `syncagent doctor` to list what the org lacks, then create the fields and "
               "grant the integration user read and edit access to them.")


class SchemaCache:
    """Describe results per object (field name -> describe entry), fetched on demand."""

    def __init__(self, client: SalesforceClient,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.client = client
        self._clock = clock
        self._fields: dict[str, dict[str, dict[str, Any]]] = {}
        self._read_at: dict[str, datetime] = {}     # when each object was described
        self._unsaved = False                        # read from the org since facts() last
        self.features_off: dict[str, str] = {}       # feature -> why
        self._warned: set[tuple[str, str]] = set()

    def known(self, obj: str) -> bool:
        return obj in self._fields

    def fields(self, obj: str) -> Mapping[str, dict[str, Any]]:
        return self._fields.get(obj, {})

    def forget(self) -> None:
        """Drop every cached describe: the next load asks the org again."""
        self._fields.clear()
        self._read_at.clear()

    def load(self, objects: Iterable[str], *, refresh: bool = False) -> None:
        """Describe the objects not cached or stale (or all of them with ``refresh``)."""
        now = self._clock()
        wanted = [o for o in dict.fromkeys(objects) if refresh or not self._fresh(o, now)]
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
                self._read_at[obj] = now
                self._unsaved = True

    def _fresh(self, obj: str, now: datetime) -> bool:
        at = self._read_at.get(obj)
        return obj in self._fields and at is not None and timedelta(0) <= now - at < STALE_AFTER

    def facts(self) -> dict[str, Any] | None:
        """What the describes said, JSON-safe (object -> when read and field -> access flags:
        ``u`` updateable, ``c`` createable), or None when nothing was read from the org since
        the last call. Names and flags only: no values."""
        if not self._unsaved:
            return None
        self._unsaved = False
        return {obj: {"read_at": self._read_at[obj].isoformat(),
                      "fields": {name: _flags(entry) for name, entry in fields.items()}}
                for obj, fields in self._fields.items() if obj in self._read_at}

    def adopt(self, facts: Mapping[str, Any]) -> None:
        """Take what another process described (``facts()``), object by object, unless this
        cache holds a newer describe. Malformed entries are skipped (they are read again)."""
        for obj, entry in facts.items():
            try:
                at = datetime.fromisoformat(entry["read_at"])
                fields = {str(name): {"name": str(name), "updateable": "u" in flags,
                                      "createable": "c" in flags}
                          for name, flags in dict(entry["fields"]).items()}
            except (KeyError, TypeError, ValueError):
                continue
            if at.tzinfo is None or (obj in self._read_at and self._read_at[obj] >= at):
                continue
            self._fields[obj], self._read_at[obj] = fields, at

    def after_refusals(self, obj: str, results: list[WriteResult]) -> list[WriteResult]:
        """A write refused for a field this describe says the user can write means the
        describe is out of date (the field was deleted or its access revoked since, perhaps
        while no process ran): read it again. An optional feature's field that turns out gone
        is then treated as a fresh describe would have had it: its feature is off and the
        record, written without it, is no rejection."""
        refused = [(e.field, e.code) for r in results for e in (*r.dropped, *r.field_errors)]
        if not any(code in SCHEMA_CODES and obj in self._fields and self.writable(obj, name)
                   for name, code in refused):
            return results
        log.info("salesforce.schema_refresh", object=obj, reason="write refused")
        self.load([obj], refresh=True)
        return [self._feature_off(obj, result) for result in results]

    def _feature_off(self, obj: str, result: WriteResult) -> WriteResult:
        gone = [e for e in result.dropped
                if (obj, e.field) in FEATURES and not self.writable(obj, e.field)]
        if not gone:
            return result
        for error in gone:
            self.selectable(obj, (error.field,))   # warns once, switches the feature off
        return replace(result, dropped=tuple(e for e in result.dropped if e not in gone))

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


def _flags(entry: Mapping[str, Any]) -> str:
    return ("u" if entry.get("updateable") else "") + ("c" if entry.get("createable") else "")


def preflight_error(missing: list[str]) -> FatalError:
    """One clear error for a Salesforce org that is not set up for the agent."""
    return FatalError(
        f"salesforce: the org is not set up for syncagent: {len(missing)} field(s) it writes "
        f"are missing or not editable by the integration user: {', '.join(missing)}",
        hint=DOCTOR_HINT, system="salesforce", missing=missing)
