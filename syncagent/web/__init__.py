"""`syncagent serve`: a read-only web dashboard of the reports, with /healthz, /readyz and
/metrics. An optional extra (`pip install 'syncagent[web]'`): nothing here is imported by
the agent itself."""

from __future__ import annotations

import importlib.util

from syncagent.errors import ConfigError

WEB_MODULES = ("fastapi", "uvicorn", "jinja2")


def require_web_extra() -> None:
    """Fail with one line naming the extra when the dashboard's packages are not installed."""
    missing = [name for name in WEB_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"the web dashboard is an optional part of syncagent and is not installed here "
            f"(missing: {', '.join(missing)})",
            hint="Install it with: pip install 'syncagent[web]'")
