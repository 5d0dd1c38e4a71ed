"""`syncagent serve`: a read-only web dashboard of the reports, with /healthz, /readyz and
/metrics. An optional extra (`pip install 'syncagent[web]'`): nothing here is imported by
the agent itself."""

from __future__ import annotations

from syncagent.extras import require_extra

WEB_MODULES = ("fastapi", "uvicorn", "jinja2")


def require_web_extra() -> None:
    """Fail with one line naming the extra when the dashboard's packages are not installed."""
    require_extra("web", "the web dashboard", WEB_MODULES)
