"""End-to-end fixtures: an agent wired to a private sandbox, and readers that check results
through the real client libraries (simple-salesforce, hubspot-api-client)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from simple_salesforce import Salesforce

from state.store import StateStore
from syncagent.pipeline.agent import build_agent, settings_from_info
from syncagent.pipeline.cycle import Agent
from syncagent.sandbox.common import SandboxConfig
from syncagent.sandbox.salesforce import sandbox_session
from syncagent.sandbox.server import RunningSandbox
from syncagent.settings import load_settings

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


@dataclass
class World:
    sandbox: RunningSandbox
    agent: Agent
    state_url: str

    def salesforce(self) -> Salesforce:
        """A simple-salesforce client on the sandbox (session id + instance URL)."""
        sf = self.sandbox.info["salesforce"]
        session = sandbox_session(sf["instance_url"], self.sandbox.ca_cert)
        return Salesforce(instance_url=sf["instance_url"], session_id=sf["session_id"],
                          session=session, version="59.0")

    def hubspot(self) -> HubSpot:
        hs = self.sandbox.info["hubspot"]
        return HubSpot(access_token=hs["access_token"], host=hs["base_url"],
                       ssl_ca_cert=self.sandbox.ca_cert)

    def new_agent(self, salesforce: dict[str, Any] | None = None) -> Agent:
        """Another agent process on the same state DB (settings overrides for Salesforce)."""
        return make_agent(self.sandbox, self.state_url, salesforce)


def make_agent(sandbox: RunningSandbox, state_url: str,
               salesforce: dict[str, Any] | None = None) -> Agent:
    overrides: dict[str, Any] = settings_from_info(sandbox.info)
    overrides["salesforce"].update(salesforce or {})
    settings = load_settings(None, state_url=state_url, mappings_dir=MAPPINGS, **overrides)
    agent = build_agent(settings)
    agent.clock = sandbox.ctx.clock.now  # the remote's time, as a real org's would be
    return agent


WorldFactory = Callable[..., World]


@pytest.fixture
def world_factory(sandbox_factory: Callable[..., RunningSandbox], tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[WorldFactory]:
    """factory(leads=200, seed=7, faults=None, state_url=None, config=None) -> World with a
    fresh state DB (``config``: the sandbox's org profile)."""
    monkeypatch.chdir(tmp_path)  # no stray syncagent.yaml

    def factory(leads: int = 200, seed: int = 7, faults: dict[str, Any] | None = None,
                state_url: str | None = None, config: SandboxConfig | None = None) -> World:
        sandbox = sandbox_factory(leads=leads, seed=seed, faults=faults, config=config)
        url = state_url or f"sqlite:///{tmp_path / f'state-{seed}-{leads}.db'}"
        StateStore(url).upgrade()
        return World(sandbox, make_agent(sandbox, url), url)

    yield factory
