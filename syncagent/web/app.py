"""The dashboard's FastAPI app: an overview, one page per report, the report JSON, and the
health endpoints. Read-only: no route writes to the state DB or calls an API.

Each page runs its report through the registry (`REPORTS`) exactly as `syncagent report`
does, and draws the page from the result's JSON, so `/reports/NAME.json` and
`syncagent report NAME --json` answer the same data the page shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from state.store import StateStore
from syncagent.engine.loader import Rules, load_rules
from syncagent.errors import SyncAgentError
from syncagent.reports import REPORTS, ReportSource
from syncagent.reports.registry import Report
from syncagent.settings import Settings
from syncagent.web import probes, views
from syncagent.web.auth import AuthMiddleware

TEMPLATES = Path(__file__).parent / "templates"
MAX_ROWS = 500                         # rows of one table drawn on a page (the JSON has all)
NEEDS_PROPOSED = frozenset({"rules-impact"})   # reports the web cannot run (see its page)
Clock = Callable[[], datetime]


@dataclass
class Dashboard:
    """What every route reads: the state DB, the live mapping files, the clock."""

    settings: Settings
    store: StateStore
    rules: Rules | None
    clock: Clock


class PageError(Exception):
    """A request the dashboard cannot answer: shown as a page (or JSON) with this status."""

    def __init__(self, status: int, message: str, hint: str) -> None:
        super().__init__(message)
        self.status, self.message, self.hint = status, message, hint


def create_app(settings: Settings, store: StateStore, *, mappings: Path | None = None,
               clock: Clock | None = None) -> FastAPI:
    """The dashboard over ``store`` (already checked to have its schema)."""
    needs_rules = any(r.needs_rules for r in REPORTS.values() if r.name not in NEEDS_PROPOSED)
    rules = load_rules(mappings or settings.mappings_dir) if needs_rules else None
    dashboard = Dashboard(settings, store, rules, clock or (lambda: datetime.now(UTC)))
    app = FastAPI(title="syncagent", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.dashboard = dashboard
    app.add_middleware(AuthMiddleware, web=settings.web)
    app.include_router(probes.router)
    templates = Jinja2Templates(directory=TEMPLATES)
    templates.env.globals["reports"] = [r for r in REPORTS.values()]
    templates.env.filters["cell"] = cell_text
    _add_pages(app, templates)
    _add_error_pages(app, templates)
    return app


def _add_pages(app: FastAPI, templates: Jinja2Templates) -> None:
    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> Response:
        dashboard: Dashboard = request.app.state.dashboard
        query = _query(request, dashboard)
        source = ReportSource(dashboard.store, dashboard.rules)
        # The overview shows totals, which no split changes: unsplit, leads-over-time reads
        # the period's persons without their records, and the funnel reuses that read.
        totals = replace(query, options=replace(query.options, split="none"))
        results = {name: _run(REPORTS[name], source, totals) for name in
                   ("leads-over-time", "funnel", "sync-health")}
        charts = [next(c for c in views.charts_of(name, results[name]) if c.spec.title == title)
                  for name, title in views.OVERVIEW_CHARTS]
        return templates.TemplateResponse(request, "overview.html", {
            "query": query, "figures": views.key_figures(results), "charts": charts,
            "readiness": probes.readiness(dashboard), "active": None})

    @app.get("/reports/{name}.json")
    def report_json(request: Request, name: str) -> Response:
        dashboard: Dashboard = request.app.state.dashboard
        report = _report(name)
        query = _query(request, dashboard)
        return JSONResponse(_run(report, ReportSource(dashboard.store, dashboard.rules), query))

    @app.get("/reports/{name}", response_class=HTMLResponse)
    def report_page(request: Request, name: str) -> Response:
        dashboard: Dashboard = request.app.state.dashboard
        report = _report(name, page=True)
        query = _query(request, dashboard)
        if report.name in NEEDS_PROPOSED:
            return templates.TemplateResponse(request, "rules_impact.html", {
                "query": query, "report": report, "active": report.name})
        result = _run(report, ReportSource(dashboard.store, dashboard.rules), query)
        return templates.TemplateResponse(request, "report.html", {
            "query": query, "report": report, "result": result, "active": report.name,
            "charts": views.charts_of(report.name, result), "max_rows": MAX_ROWS})


def _add_error_pages(app: FastAPI, templates: Jinja2Templates) -> None:
    @app.exception_handler(PageError)
    def page_error(request: Request, error: PageError) -> Response:
        if request.url.path.endswith(".json"):
            return JSONResponse({"error": error.message, "hint": error.hint},
                                status_code=error.status)
        return templates.TemplateResponse(request, "error.html", {
            "error": error, "active": None, "query": None}, status_code=error.status)


def _report(name: str, page: bool = False) -> Report:
    report = REPORTS.get(name)
    if report is None:
        raise PageError(404, f"there is no report named '{name}'",
                        "Reports: " + ", ".join(REPORTS) + ".")
    if report.name in NEEDS_PROPOSED and not page:
        raise PageError(400, f"{name} compares proposed mapping files with the live ones, and "
                        "the dashboard does not read files named in a request",
                        f"Run `syncagent report {name} --proposed DIR --json`.")
    return report


def _query(request: Request, dashboard: Dashboard) -> views.Query:
    try:
        return views.read_query(dict(request.query_params), dashboard.clock())
    except SyncAgentError as error:
        raise PageError(400, error.message, error.hint) from None


def _run(report: Report, source: ReportSource, query: views.Query) -> dict[str, Any]:
    try:
        return report.run(source, query.period, query.options).to_dict()
    except SyncAgentError as error:  # the state DB went away, say
        raise PageError(503, error.message, error.hint) from None


def cell_text(value: Any) -> str:
    """A JSON cell as a page shows it: the same text, a dash for none."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
