"""Read the live schema facts through the connectors, cache them in the state DB, and turn
them into the doctor's rows.

`doctor` always reads live. `sync`, `run` and `check --live` use the cached facts while they
are younger than ``STALE_AFTER`` and were read for the same mapping files (the lists and
objects read depend on them), and read them again otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from state.schema_facts import SchemaFactsStore
from state.store import StateStore
from syncagent.engine import Rules, load_rules
from syncagent.errors import ConfigError, SyncAgentError
from syncagent.preflight.checks import Row, blockers, evaluate
from syncagent.preflight.lines import MappingLines
from syncagent.preflight.requirements import Requirement, requirements
from syncagent.settings import Settings

if TYPE_CHECKING:
    from connectors.salesforce.client import SalesforceClient

STALE_AFTER = timedelta(minutes=15)
SYSTEMS = ("salesforce", "hubspot")


@dataclass
class Preflight:
    """The requirements of one configuration, and the facts read for them."""

    settings: Settings
    rules: Rules
    requirements: list[Requirement]

    @classmethod
    def of(cls, settings: Settings) -> Preflight:
        rules = load_rules(settings.mappings_dir)
        lines = MappingLines.read(settings.mappings_dir)
        return cls(settings, rules, requirements(rules, lines))

    def read_live(self) -> dict[str, dict[str, Any]]:
        """Facts of both systems, read now (a login failure is a fact, not an exception)."""
        facts = {"salesforce": self._salesforce(), "hubspot": self._hubspot()}
        for system_facts in facts.values():
            system_facts["fingerprint"] = self.rules.fingerprint
        return facts

    def salesforce_client(self) -> SalesforceClient:
        """A logged-in SalesforceClient of these settings (the caller closes it)."""
        from connectors.salesforce.client import SalesforceClient

        return SalesforceClient(self.settings.salesforce, ca_bundle=self.settings.ca_bundle)

    def _salesforce(self) -> dict[str, Any]:
        from connectors.salesforce.orgschema import read_org

        objects = [r.object for r in self.requirements if r.system == "salesforce" and r.object]
        try:
            client = self.salesforce_client()
        except SyncAgentError as error:
            return {"error": error.message, "error_hint": error.hint}
        try:
            return read_org(client, objects)
        finally:
            client.close()

    def _hubspot(self) -> dict[str, Any]:
        from connectors.hubspot.client import HubSpotClient
        from connectors.hubspot.portalschema import read_portal

        names = [r.name for r in self.requirements if r.kind == "list"]
        try:
            client = HubSpotClient(self.settings.hubspot, ca_bundle=self.settings.ca_bundle)
            return read_portal(client, names)
        except SyncAgentError as error:
            return {"error": error.message, "error_hint": error.hint}

    def rows(self, facts: dict[str, dict[str, Any]]) -> list[Row]:
        return evaluate(self.requirements, facts)


@contextmanager
def facts_store(settings: Settings) -> Iterator[SchemaFactsStore | None]:
    """The cache, or None when the state DB has no schema yet (doctor still works); the
    store's engine is disposed on leaving the block."""
    store = StateStore(settings.state_url)
    try:
        yield store.schema_facts if store.schema_revision() is not None else None
    finally:
        store.dispose()


def save(cache: SchemaFactsStore | None, facts: dict[str, dict[str, Any]]) -> None:
    if cache is None:
        return
    now = datetime.now(UTC)
    for system, system_facts in facts.items():
        cache.save(system, system_facts, now)


def cached_or_live(preflight: Preflight, cache: SchemaFactsStore | None,
                   now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Cached facts when fresh and read for these mappings; else read live and cache."""
    moment = now or datetime.now(UTC)
    stored = cache.load() if cache is not None else {}
    fresh = all(
        system in stored and moment - stored[system][1] < STALE_AFTER
        and stored[system][0].get("fingerprint") == preflight.rules.fingerprint
        and not stored[system][0].get("error")
        for system in SYSTEMS)
    if fresh:
        return {system: stored[system][0] for system in SYSTEMS}
    facts = preflight.read_live()
    save(cache, facts)
    return facts


def refuse_while_blocked(settings: Settings) -> None:
    """Raise one error naming `syncagent doctor` while a requirement blocks syncing.

    A system whose login fails is left to the cycle, which reports the login problem with its
    own hint; its other rows could not be checked and block nothing here."""
    preflight = Preflight.of(settings)
    with facts_store(settings) as cache:
        facts = cached_or_live(preflight, cache)
    stop = [r for r in blockers(preflight.rows(facts))
            if not (facts.get(r.system) or {}).get("error")]
    if not stop:
        return
    parts = []
    for system in SYSTEMS:
        mine = [r.subject for r in stop if r.system == system]
        if mine:
            more = f" and {len(mine) - 3} more" if len(mine) > 3 else ""
            parts.append(f"{system}: {len(mine)} ({', '.join(mine[:3])}{more})")
    raise ConfigError(
        "not syncing: the org or portal lacks what the agent needs, "
        f"{'; '.join(parts)}; run `syncagent doctor` to see each item and its fix",
        hint="`syncagent setup` shows what it would create; `syncagent setup --apply` creates "
             "the agent's fields, properties and lists.")
