"""Settings that point both connectors at a running sandbox (its ``/__sandbox/info`` JSON).

Nothing here imports the sandbox: it only reads the info dict, so ``syncagent demo``, the
benchmarks and the tests build their connectors the same way as for a real org and portal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from syncagent.settings import HubSpotSettings, SalesforceSettings

MAX_SEARCHES_PER_SECOND = 5   # HubSpot's documented search limit (API-FACTS), the settings' bound


def salesforce_settings(info: Mapping[str, Any], **overrides: Any) -> SalesforceSettings:
    """JWT bearer login against the sandbox (``login_url`` = the sandbox), the flow every org
    allows; the password and token are there for ``auth="password"`` overrides."""
    sf = info["salesforce"]
    values: dict[str, Any] = {
        "auth": "jwt", "login_url": sf["instance_url"], "instance_url": sf["instance_url"],
        "private_key_file": sf["jwt_private_key"],
        "username": sf["username"], "password": SecretStr(sf["password"]),
        "security_token": SecretStr(sf["security_token"]),
        "consumer_key": sf["consumer_key"], "consumer_secret": SecretStr(sf["consumer_secret"])}
    values.update(overrides)
    return SalesforceSettings(**values)


def hubspot_settings(info: Mapping[str, Any], **overrides: Any) -> HubSpotSettings:
    hs = info["hubspot"]
    values: dict[str, Any] = {"base_url": hs["base_url"],
                              "access_token": SecretStr(hs["access_token"])}
    # The sandbox's own limits, when it tells them (older sandboxes do not): the agent then
    # paces itself to them, as an operator sets them for a real portal's tier.
    if "requests_per_10s" in hs:
        values["requests_per_10s"] = int(hs["requests_per_10s"])
    if "searches_per_second" in hs:
        values["searches_per_second"] = min(int(hs["searches_per_second"]),
                                            MAX_SEARCHES_PER_SECOND)
    values.update(overrides)
    return HubSpotSettings(**values)


def ca_bundle(info: Mapping[str, Any]) -> str:
    return str(info["ca_cert"])


def settings_overrides(info: Mapping[str, Any]) -> dict[str, Any]:
    """Settings overrides (as `load_settings` keywords) for every system the sandbox runs."""
    return {"ca_bundle": ca_bundle(info),
            "salesforce": salesforce_settings(info).model_dump(exclude_unset=True),
            "hubspot": hubspot_settings(info).model_dump(exclude_unset=True)}
