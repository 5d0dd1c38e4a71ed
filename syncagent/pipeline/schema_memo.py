"""The connectors' start-up schema facts, kept in the state DB so the next process reuses them.

Each `sync --once` is a process of its own. Without this, every one of them would read the
Salesforce describe and the HubSpot contact properties again before its first write, which a
long-lived `run` reads once: an idle cycle would cost one call more per system than it needs.
A connector that offers ``schema_facts()`` (what it read since the last call) and
``adopt_schema_facts(facts)`` (connectors.base.SchemaMemory) gets, before each cycle, the
facts the last process read, when they were read for the same mapping files; the connector
itself re-reads them once they are older than its limit (15 minutes). A field deleted in
between is still noticed: a query or a write refused for it makes the connector read its
schema again, and that read is kept here.
Facts hold names and access flags only, never record values or credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.base import SchemaMemory

if TYPE_CHECKING:
    from syncagent.pipeline.cycle import Agent


def key(system: str) -> str:
    """The facts row of a system's connector (the doctor's own rows are keyed by system)."""
    return f"sync:{system}"


def restore(agent: Agent) -> None:
    """Hand each connector the facts an earlier process kept for these mappings."""
    stored = agent.store.schema_facts.load()
    for system, connector in agent.connectors.items():
        if not isinstance(connector, SchemaMemory):
            continue
        facts, _at = stored.get(key(system), ({}, None))
        if (facts.get("fingerprint") == agent.rules.fingerprint
                and isinstance(facts.get("facts"), dict)):
            connector.adopt_schema_facts(facts["facts"])


def keep(agent: Agent) -> None:
    """Save what each connector read from its system during the cycle."""
    cache = agent.store.schema_facts
    for system, connector in agent.connectors.items():
        if not isinstance(connector, SchemaMemory):
            continue
        facts = connector.schema_facts()
        if facts:
            cache.save(key(system), {"fingerprint": agent.rules.fingerprint, "facts": facts})
