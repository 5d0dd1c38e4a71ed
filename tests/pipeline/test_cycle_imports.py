"""The agent's cycle process imports only what a cycle needs (issue 18: its peak RSS).

Every module imported stays in memory for the whole run, so a package pulled in by accident
(the sandbox, the web dashboard, Alembic's migration runtime, HubSpot SDK APIs the agent never
calls) costs RSS on every cycle. A fresh interpreter builds an agent exactly as
`syncagent sync` does (nothing is called) and reports its modules.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from state.store import StateStore

ROOT = Path(__file__).resolve().parents[2]

BUILD_AGENT = """
import json, sys
from syncagent.pipeline.agent import build_agent
from syncagent.pipeline.cycle import run_cycle
from syncagent.settings import load_settings

settings = load_settings(
    None, state_url=sys.argv[1], mappings_dir=sys.argv[2],
    salesforce={"auth": "session", "session_id": "00Dx!token",
                "instance_url": "https://example.my.salesforce.com"},
    hubspot={"access_token": "pat-na1-00000000-0000-0000-0000-000000000000"})
build_agent(settings)
print(json.dumps(sorted(sys.modules)))
"""

#: Never in the cycle's process: run/serve/sandbox/learn features, migrations, other SDK APIs.
FORBIDDEN = ("alembic", "mako", "fastapi", "uvicorn", "starlette", "jinja2", "sklearn",
             "trustme", "syncagent.sandbox", "syncagent.web", "syncagent.learn",
             "syncagent.reports", "prometheus_client")
#: The HubSpot SDK's API packages the connector calls (client.py); any other is dead weight.
HUBSPOT_USED = ("hubspot.crm.objects", "hubspot.crm.owners", "hubspot.crm.properties",
                "hubspot.crm.lists", "hubspot.crm.associations", "hubspot.events")
HUBSPOT_PLUMBING = frozenset({"hubspot.client", "hubspot.crm", "hubspot.discovery",
                              "hubspot.hubspot", "hubspot.utils", "hubspot.crm.object_type",
                              "hubspot.crm.association_type"})


def cycle_modules(tmp_path: Path) -> set[str]:
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    StateStore(state_url).upgrade()   # as `syncagent db upgrade` does, in its own process
    out = subprocess.run([sys.executable, "-c", BUILD_AGENT, state_url, str(ROOT / "mappings")],
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_cycle_process_carries_no_package_a_cycle_does_not_use(tmp_path: Path) -> None:
    modules = cycle_modules(tmp_path)
    assert "connectors.hubspot.client" in modules     # the agent was really built
    assert "hubspot.crm.objects" in modules
    unwanted = sorted(name for name in modules
                      if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN))
    assert unwanted == []
    assert sdk_packages(modules) <= set(HUBSPOT_USED)


def sdk_packages(modules: set[str]) -> set[str]:
    """The HubSpot SDK's API packages among ``modules`` ("hubspot.crm.lists", "hubspot.events"),
    leaving out the SDK's own plumbing (discovery, client, utils)."""
    out = set()
    for name in modules:
        parts = name.split(".")
        if parts[0] != "hubspot" or len(parts) < 2:
            continue
        package = ".".join(parts[:3] if parts[1] == "crm" and len(parts) > 2 else parts[:2])
        if package not in HUBSPOT_PLUMBING:
            out.add(package)
    return out
