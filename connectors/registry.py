"""The registered systems: each connector package's ``profile.py`` registers its profile.

The built-in systems are listed in ``BUILTIN`` (a module path each) and imported on first
use. A new system adds its profile module here; nothing in ``syncagent/pipeline`` or
``syncagent/engine`` names it (see docs/adding-a-connector.md). Tests may ``register`` a
profile of their own and ``unregister`` it afterwards.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from connectors.profile import SystemProfile

BUILTIN = ("connectors.salesforce.profile", "connectors.hubspot.profile")

_lock = threading.Lock()
_profiles: dict[str, SystemProfile] = {}
_loaded = False


def register(profile: SystemProfile) -> SystemProfile:
    """Add a system (its name must be new, or the same profile again)."""
    with _lock:
        held = _profiles.get(profile.system)
        if held is not None and held is not profile:
            raise ValueError(f"a system named {profile.system!r} is registered already")
        _profiles[profile.system] = profile
    return profile


def unregister(system: str) -> None:
    with _lock:
        _profiles.pop(system, None)


def registered() -> Mapping[str, SystemProfile]:
    """Every registered system's profile, built-ins first, in registration order."""
    _load_builtins()
    with _lock:
        return MappingProxyType(dict(_profiles))


def profile_of(system: str) -> SystemProfile | None:
    _load_builtins()
    return _profiles.get(system)  # per record: no copy (a dict read is atomic)


def machine_owners(settings: Any) -> frozenset[str]:
    """The owners that mean "not assigned by a person" (the integration user, a default
    owner), lower-cased, as the systems' settings name them."""
    names: set[str] = set()
    for profile in registered().values():
        if profile.machine_owners is not None:
            names.update(n.lower() for n in profile.machine_owners(settings) if n)
    return frozenset(names)


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    for module in BUILTIN:  # each registers its profile on import
        importlib.import_module(module)
    _loaded = True
