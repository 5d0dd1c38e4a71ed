"""CLI commands of the sandbox area; registered on the main app by syncagent.cli."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import cast

import typer
from pydantic import ValidationError

from syncagent.errors import ConfigError
from syncagent.extras import require_extra
from syncagent.sandbox.common import (
    HUBSPOT_SCOPES,
    HUBSPOT_TIERS,
    ORG_PROFILES,
    FaultProfile,
    HubSpotTier,
    OrgProfile,
    SandboxConfig,
)

# What `pip install 'syncagent[sandbox]'` adds (pyproject.toml, extra `sandbox`).
SANDBOX_MODULES = ("fastapi", "uvicorn", "trustme")


def require_sandbox_extra() -> None:
    """Fail with one line naming the extra when the sandbox's packages are not installed."""
    require_extra("sandbox", "the sandbox", SANDBOX_MODULES)


def _load_faults(path: Path | None) -> FaultProfile | None:
    """Read a FaultProfile JSON file; a bad file is a ConfigError naming it."""
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"cannot read fault profile {path}: {error.strerror}",
                          hint="Pass an existing JSON file to --faults.") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"fault profile {path} is not JSON: line {error.lineno}, column "
                          f"{error.colno}: {error.msg}",
                          hint="Fix the JSON; see docs/sandbox.md for the fields.") from None
    try:
        return FaultProfile.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"fault profile {path}: {where}: {first['msg']}",
                          hint="See docs/sandbox.md for the fault profile fields.") from None


def _sandbox_config(profile: str, scopes: str | None, tier: str) -> SandboxConfig:
    """The org profile and HubSpot token from the CLI flags; a bad value is a ConfigError."""
    if profile not in ORG_PROFILES:
        raise ConfigError(f"unknown --profile {profile!r}",
                          hint=f"Use one of: {', '.join(ORG_PROFILES)}.")
    if tier not in HUBSPOT_TIERS:
        raise ConfigError(f"unknown --hubspot-tier {tier!r}",
                          hint=f"Use one of: {', '.join(HUBSPOT_TIERS)}.")
    granted = HUBSPOT_SCOPES if scopes is None else tuple(
        part.strip() for part in scopes.split(",") if part.strip())
    return SandboxConfig(profile=cast(OrgProfile, profile), hubspot_scopes=granted,
                         hubspot_tier=cast(HubSpotTier, tier))


def sandbox(
    port: int = typer.Option(8765, "--port", help="TCP port on 127.0.0.1 (0 = any free port)."),
    leads: int = typer.Option(2000, "--leads", min=1, help="How many Salesforce leads to seed."),
    seed: int = typer.Option(7, "--seed", help="Random seed: the same seed, the same data."),
    faults: Path | None = typer.Option(None, "--faults", dir_okay=False,
                                       help="JSON fault profile (see docs/sandbox.md)."),
    info_file: Path | None = typer.Option(None, "--info-file", dir_okay=False,
                                          help="Also write the /__sandbox/info JSON here."),
    org_profile: str = typer.Option(
        "configured", "--profile",
        help="configured: the agent's fields, properties and lists exist (default). "
             "fresh: a new org and portal where none of them exist yet."),
    hubspot_scopes: str | None = typer.Option(
        None, "--hubspot-scopes",
        help="Comma-separated scopes of the HubSpot private-app token (default: all)."),
    hubspot_tier: str = typer.Option(
        "enterprise", "--hubspot-tier",
        help="HubSpot subscription tier: starter, professional or enterprise."),
) -> None:
    """Serve local Salesforce + HubSpot emulators over HTTPS until Ctrl-C."""
    require_sandbox_extra()
    from syncagent.sandbox.server import start_sandbox, write_info

    profile = _load_faults(faults)
    config = _sandbox_config(org_profile, hubspot_scopes, hubspot_tier)
    began = time.monotonic()
    try:
        running = start_sandbox(port=port, leads=leads, seed=seed, faults=profile,
                                config=config)
    except OSError as error:
        raise ConfigError(f"cannot listen on 127.0.0.1:{port}: {error.strerror}",
                          hint="Pick another --port or stop what is using it.") from None
    if info_file is not None:
        write_info(info_file, running)
    typer.echo(f"sandbox ready in {time.monotonic() - began:.1f}s: {leads} leads, seed {seed}, "
               f"profile {config.profile}")
    typer.echo(f"info: {running.url}/__sandbox/info")
    typer.echo(f"ca:   {running.ca_cert}")
    typer.echo(f"try:  curl --cacert {running.ca_cert} {running.url}/__sandbox/info")
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        running.stop()
        typer.echo("sandbox stopped")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main typer app."""
    app.command("sandbox")(sandbox)
