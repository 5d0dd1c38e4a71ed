"""Build an `Agent` from settings: the state store, both connectors and the rules.

`sandbox_settings` lets `--sandbox https://127.0.0.1:PORT` stand in for a whole configuration:
the credentials and the CA come from the sandbox's own `/__sandbox/info`.
"""

from __future__ import annotations

import ssl
import urllib.request
from json import loads
from typing import Any
from urllib.parse import urlparse

from state.runs import Key
from state.store import StateStore
from syncagent.credentials import require_credentials
from syncagent.engine import Rules, load_rules
from syncagent.errors import ConfigError
from syncagent.pipeline.cycle import Agent
from syncagent.pipeline.holder import holder_name
from syncagent.settings import Settings


def build_agent(settings: Settings, *, write: bool = True) -> Agent:
    """Open the store, load the rules, connect both systems (nothing is called yet).

    Both systems' credentials are checked first: a missing one is reported before any call."""
    from connectors.hubspot.connector import HubSpotConnector
    from connectors.salesforce.connector import SalesforceConnector
    from connectors.salesforce.streams import with_mapped_fields

    require_credentials(settings)
    store = StateStore(settings.state_url)
    store.require_schema()
    rules = load_rules(settings.mappings_dir)
    usage = store.runs.get_value(Key.API_USAGE, {}) or {}
    salesforce = SalesforceConnector.from_settings(
        settings, budget_history=(usage.get("salesforce") or {}).get("hours"),
        stream_table=with_mapped_fields(_mapped_salesforce_fields(rules)))
    hubspot = HubSpotConnector.from_settings(
        settings, budget_history=(usage.get("hubspot") or {}).get("hours"),
        mapped_fields=[f.hubspot for f in rules.compiled.fields if f.hubspot],
        own_writes_seen=(usage.get("hubspot") or {}).get("own_writes"))
    machines = {settings.salesforce.username or "", *settings.salesforce.unassigned_owners}
    return Agent(store, salesforce, hubspot, rules, holder=holder_name(), write=write,
                 machine_owners=frozenset(m.lower() for m in machines if m))


def _mapped_salesforce_fields(rules: Rules) -> dict[str, list[str]]:
    """Every Salesforce field fields.yaml maps, by object: the streams read them all."""
    mapped: dict[str, list[str]] = {"Lead": [], "Contact": []}
    for field in rules.compiled.fields:
        if field.sf_lead:
            mapped["Lead"].append(field.sf_lead)
        if field.sf_contact:
            mapped["Contact"].append(field.sf_contact)
    return mapped


def save_usage(agent: Agent) -> None:
    """Carry each connector's rolling API count across runs (the daily budget is rolling)."""
    usage = {}
    for connector in agent.connectors:
        status = getattr(connector, "status", None)
        if callable(status):
            usage[connector.system] = status()
    agent.store.runs.set_value(Key.API_USAGE, usage)


def sandbox_settings(url: str) -> dict[str, Any]:
    """Settings overrides that point the agent at a running sandbox."""
    return settings_from_info(fetch_sandbox_info(url))


def settings_from_info(info: dict[str, Any]) -> dict[str, Any]:
    """Settings overrides from a sandbox's /__sandbox/info answer."""
    from connectors.sandbox import ca_bundle, hubspot_settings, salesforce_settings

    return {"ca_bundle": ca_bundle(info),
            "salesforce": salesforce_settings(info).model_dump(exclude_unset=True),
            "hubspot": hubspot_settings(info).model_dump(exclude_unset=True)}


def fetch_sandbox_info(url: str) -> dict[str, Any]:
    """GET /__sandbox/info. The sandbox's CA is what we are about to learn, so this one call
    is made without certificate checks, and only to a loopback address."""
    parsed = urlparse(url)
    if parsed.scheme != "https" or parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"--sandbox {url!r} is not a local https URL",
                          hint="Give the URL `syncagent sandbox` printed, "
                               "e.g. https://127.0.0.1:8765.")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/__sandbox/info", context=context,
                                    timeout=10) as answer:
            return dict(loads(answer.read()))
    except OSError as exc:
        raise ConfigError(f"no sandbox answers at {url} ({exc})",
                          hint="Start one with `syncagent sandbox --port PORT` "
                               "or check the port.") from None
