"""Credentials of both systems, checked before any network call.

A missing Salesforce password must be reported at once, not after HubSpot's calls and
retries; and both systems' problems together, so one run shows everything to fix. Only
presence and form are checked here (the APIs judge the values); no value is ever printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from syncagent.errors import ConfigError
from syncagent.settings import ENV_PREFIX, Settings

# What each Salesforce login flow needs (the client's login uses the same rules).
SALESFORCE_NEEDS: dict[str, tuple[str, ...]] = {
    "password": ("username", "password", "security_token"),
    "oauth_password": ("username", "password", "consumer_key", "consumer_secret"),
    "jwt": ("username", "consumer_key"),
    "client_credentials": ("consumer_key", "consumer_secret"),
    "session": ("session_id", "instance_url"),
}


def credential_problems(settings: Settings) -> list[str]:
    """One line per missing or malformed credential setting, both systems."""
    return [*_salesforce(settings), *_hubspot(settings)]


def require_credentials(settings: Settings) -> None:
    problems = credential_problems(settings)
    if problems:
        raise ConfigError("credentials are missing or malformed: " + "; ".join(problems),
                          hint="Set them in syncagent.yaml or as SYNCAGENT_* variables "
                               "(see README 'Configuration'), or try the agent with "
                               "--sandbox URL first.")


def _salesforce(settings: Settings) -> list[str]:
    sf = settings.salesforce
    problems = [_missing("salesforce", name, f"salesforce.auth={sf.auth} needs it")
                for name in SALESFORCE_NEEDS[sf.auth] if _blank(getattr(sf, name))]
    if sf.auth == "jwt" and _blank(sf.private_key) and sf.private_key_file is None:
        problems.append(_missing("salesforce", "private_key", "salesforce.auth=jwt needs it "
                                 "or salesforce.private_key_file"))
    if sf.auth == "jwt" and sf.private_key_file is not None \
            and not Path(sf.private_key_file).is_file():
        problems.append(f"salesforce.private_key_file: no file at {sf.private_key_file}")
    if sf.username and "@" not in sf.username:
        problems.append("salesforce.username: a Salesforce username looks like an e-mail "
                        "address (name@example.com)")
    for name in ("instance_url", "login_url"):
        value = getattr(sf, name)
        if value and not _https_url(value):
            problems.append(f"salesforce.{name}: '{value}' is not an https:// URL")
    return problems


def _hubspot(settings: Settings) -> list[str]:
    hs = settings.hubspot
    problems = []
    if _blank(hs.access_token):
        problems.append(_missing("hubspot", "access_token", "the private app's access token"))
    elif any(ch.isspace() for ch in _secret(hs.access_token)):
        problems.append("hubspot.access_token: contains spaces or line breaks; paste the "
                        "token alone")
    if not _http_url(hs.base_url):
        problems.append(f"hubspot.base_url: '{hs.base_url}' is not an http(s):// URL")
    return problems


def _missing(system: str, name: str, why: str) -> str:
    env = f"{ENV_PREFIX}{system.upper()}__{name.upper()}"
    return f"{system}.{name} is not set ({why}; or {env})"


def _secret(value: Any) -> str:
    getter = getattr(value, "get_secret_value", None)
    return str(getter() if callable(getter) else value or "")


def _blank(value: Any) -> bool:
    return value is None or not _secret(value).strip()


def _https_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme == "https" and bool(parsed.netloc)


def _http_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)
