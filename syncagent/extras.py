"""The optional parts of syncagent (pyproject extras) and the one-line error when one is
missing, naming what to install."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from syncagent.errors import ConfigError


def require_extra(extra: str, what: str, modules: Sequence[str]) -> None:
    """Raise a ConfigError naming ``pip install 'syncagent[extra]'`` when any of ``modules``
    (the packages the extra adds) is not importable."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"{what} is an optional part of syncagent and is not installed here "
            f"(missing: {', '.join(missing)})",
            hint=f"Install it with: pip install 'syncagent[{extra}]'")
