"""Build an `Agent` from settings: the state store, a connector per registered system, the
rules.

`sandbox_settings` lets `--sandbox https://127.0.0.1:PORT` stand in for a whole configuration:
the credentials and the CA come from the sandbox's own `/__sandbox/info`.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from json import loads
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from connectors.base import Connector, System
from connectors.profile import SystemProfile
from connectors.registry import machine_owners, registered
from state.runs import Key
from state.store import StateStore
from syncagent.credentials import require_credentials
from syncagent.engine import Rules, load_rules
from syncagent.errors import ConfigError
from syncagent.pipeline.cycle import Agent
from syncagent.pipeline.holder import holder_name
from syncagent.settings import Settings


def build_agent(settings: Settings, *, write: bool = True) -> Agent:
    """Open the store, load the rules, connect every registered system (nothing is called
    yet). Every system's credentials are checked first: a missing one is reported before any
    call."""
    require_credentials(settings)
    store = StateStore(settings.state_url)
    store.require_schema()
    rules = load_rules(settings.mappings_dir)
    usage = store.runs.get_value(Key.API_USAGE, {}) or {}
    connectors: dict[System, Connector] = {}
    for system, profile in registered().items():
        if profile.connect is not None:
            connectors[system] = profile.connect(settings, usage.get(system) or {},
                                                 mapped_fields(rules, profile))
    return Agent(store, connectors, rules, holder=holder_name(), write=write,
                 machine_owners=machine_owners(settings), workers=settings.eval_workers)


def mapped_fields(rules: Rules, profile: SystemProfile) -> dict[str, list[str]]:
    """Every field fields.yaml maps on each of the system's person objects: its streams read
    them all."""
    mapped: dict[str, list[str]] = {}
    for person in profile.person_objects:
        names = (field.remote_name(profile.system, person.object)
                 for field in rules.compiled.fields)
        mapped[person.object] = [name for name in names if name]
    return mapped


def save_usage(agent: Agent) -> None:
    """Carry each connector's rolling API count across runs (the daily budget is rolling)."""
    agent.store.runs.set_value(Key.API_USAGE, {system: connector.status()
                                      for system, connector in agent.connectors.items()})


def sandbox_settings(url: str) -> dict[str, Any]:
    """Settings overrides that point the agent at a running sandbox."""
    return settings_from_info(fetch_sandbox_info(url))


def settings_from_info(info: dict[str, Any]) -> dict[str, Any]:
    """Settings overrides from a sandbox's /__sandbox/info answer."""
    from connectors.sandbox import settings_overrides

    return settings_overrides(info)


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


def sandbox_clock(url: str, ca_bundle: Path | str | None) -> Callable[[], datetime]:
    """The sandbox's simulated now (GET /__sandbox/clock), read at each call: a cycle reads
    its clock once, at its start, so the hours a sandbox simulation skips pass for the agent
    too. A sandbox that stops answering is an error, never a fall back to this host's clock
    (time would run backwards)."""
    context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    address = url.rstrip("/") + "/__sandbox/clock"

    def now() -> datetime:
        try:
            with urllib.request.urlopen(address, context=context, timeout=10) as answer:
                moment = datetime.fromisoformat(str(loads(answer.read())["now"]))
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"the sandbox at {url} did not tell its time ({exc})",
                              hint="Is `syncagent sandbox` still running on that port?") from None
        if moment.tzinfo is None:
            raise ConfigError(f"the sandbox at {url} answered a time without a timezone",
                              hint="Use a sandbox of this syncagent version.")
        return moment.astimezone(UTC)

    return now
