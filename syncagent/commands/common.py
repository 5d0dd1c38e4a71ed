"""Options and helpers shared by every command: config file, state URL, settings loading."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import SecretStr

from syncagent.logging import configure_logging, register_secrets
from syncagent.settings import Settings, load_settings

ConfigOption = typer.Option(
    None,
    "--config",
    help="Path of syncagent.yaml (default: $SYNCAGENT_CONFIG, else ./syncagent.yaml if present).",
    dir_okay=False,
)
StateOption = typer.Option(
    None,
    "--state",
    help="State DB URL, e.g. sqlite:///syncagent-state.db or "
    "postgresql+psycopg://USER@HOST:5432/DB (default: the setting state_url).",
)
JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")


def settings_for_command(config: Path | None = None, state: str | None = None,
                         **overrides: object) -> Settings:
    """Load settings with CLI flags on top, set up logging, and register secrets for redaction."""
    settings = load_settings(config, state_url=state, **overrides)
    configure_logging(settings.log_level, settings.log_format)
    register_secrets(_all_secrets(settings))
    return settings


def _all_secrets(settings: Settings) -> list[SecretStr | None]:
    sf, hs, web = settings.salesforce, settings.hubspot, settings.web
    return [sf.password, sf.security_token, sf.consumer_secret, sf.private_key, sf.session_id,
            hs.access_token, web.token, web.password]
