"""`syncagent serve`: every page answers from the report JSON, on an empty state DB too; bad
query parameters are a 400 that says what to fix; the command refuses a bind beyond this
machine without auth, and refuses to run without the web extra."""

from __future__ import annotations

import html
import importlib.util
import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from state.store import StateStore
from syncagent.cli import app
from syncagent.reports import REPORTS
from syncagent.web.views import CHARTS, KEY_FIGURES
from tests.reports.conftest import MAPPINGS, _activity, _sf, _world, add_runs, at, seed
from tests.web.conftest import Serve
from tests.web.expect import Page, column_sum, expected_marks, expected_tables

PAGES = ["/", *(f"/reports/{name}" for name in REPORTS)]
NOVEMBER = {"since": "2026-11-02", "until": "2026-11-30", "by": "week"}


def test_every_page_answers_on_an_empty_state_db_and_says_there_is_no_data(
        empty_store: StateStore, serve: Serve) -> None:
    base = serve(empty_store)
    for path in PAGES:
        page = requests.get(base + path, timeout=10)
        assert page.status_code == 200, (path, page.text[-2000:])
        if path != "/reports/rules-impact":
            assert "No data in this period." in page.text, path
    overview = Page(requests.get(base + "/", timeout=10).text)
    assert not overview.marks, "an empty state DB draws no chart marks"
    assert {f["text"] for f in overview.figures} == {"0"}


@pytest.mark.parametrize(("query", "said"), [
    ({"since": "2026-11-30", "until": "2026-11-02"}, "is not before until"),
    ({"since": "2026-11-30", "until": "2026-11-30"}, "is not before until"),
    ({"by": "year"}, "by 'year' is not one of day, week, month"),
    ({"since": "last tuesday"}, "since 'last tuesday' is not a date or time"),
    ({"split": "colour"}, "split 'colour' is not one of"),
    ({"untouched_days": "-3"}, "untouched_days '-3' is not a whole number"),
])
def test_a_bad_query_parameter_is_a_400_naming_it_never_a_traceback(
        world_store: StateStore, serve: Serve, query: dict[str, str], said: str) -> None:
    base = serve(world_store)
    for path in ("/", "/reports/leads-over-time", "/reports/clean-your-room",
                 "/reports/funnel.json"):
        answer = requests.get(base + path, params=query, timeout=10)
        assert answer.status_code == 400, (path, query)
        assert said in html.unescape(answer.text), answer.text
        assert "Traceback" not in answer.text
    problem = requests.get(base + "/reports/funnel.json", params=query, timeout=10).json()
    assert said in problem["error"] and problem["hint"]


def test_an_unknown_report_is_a_404_listing_the_reports(world_store: StateStore,
                                                        serve: Serve) -> None:
    answer = requests.get(serve(world_store) + "/reports/pipeline", timeout=10)
    assert answer.status_code == 404
    assert "no report named" in answer.text and "clean-your-room" in answer.text


def test_each_report_page_shows_the_tables_charts_and_figures_of_its_json(
        world_store: StateStore, serve: Serve) -> None:
    base = serve(world_store)
    for name in REPORTS:
        if name == "rules-impact":
            continue
        result = requests.get(f"{base}/reports/{name}.json", params=NOVEMBER, timeout=10).json()
        page = Page(requests.get(f"{base}/reports/{name}", params=NOVEMBER, timeout=10).text)
        assert page.tables == expected_tables(result), name
        drawn = {(m["chart"], m["data-series"], m["data-label"]): float(m["data-value"])
                 for m in page.marks}
        wanted = {(spec.title, *key): value for spec in CHARTS.get(name, ())
                  for key, value in expected_marks(result, spec.table, spec.label,
                                                   spec.values, spec.pivot,
                                                   spec.over_time).items()}
        assert drawn.keys() == wanted.keys(), name
        for key, value in wanted.items():
            assert drawn[key] == pytest.approx(value, rel=1e-3), (name, key)
    overview = Page(requests.get(base + "/", params=NOVEMBER, timeout=10).text)
    assert len(overview.figures) == len(KEY_FIGURES)
    for figure in overview.figures:
        result = requests.get(f"{base}/reports/{figure['data-report']}.json", params=NOVEMBER,
                              timeout=10).json()
        assert float(figure["text"]) == column_sum(result, figure["data-table"],
                                                   figure["data-column"]), figure


def test_the_world_draws_the_hand_computed_figures(world_store: StateStore,
                                                   serve: Serve) -> None:
    """The seeded November: 4 new leads (2 in the week of 2 Nov), 4 MQLs, 3 cycles of which
    1 failed... read off the overview, not recomputed."""
    base = serve(world_store)
    overview = Page(requests.get(base + "/", params=NOVEMBER, timeout=10).text)
    figures = {f["data-column"] + "@" + f["data-report"]: f["text"] for f in overview.figures}
    assert figures["new_leads@leads-over-time"] == "4"
    assert figures["mqls@leads-over-time"] == "4"
    assert figures["cycles@sync-health"] == "2"     # the 30 Nov cycle is after the period
    assert figures["failed@sync-health"] == "1"
    assert figures["rows@sync-health"] == "3"       # dead letters, as of now
    points = {(m["data-series"], m["data-label"]): m["data-value"] for m in overview.marks
              if m["chart"] == "Leads, MQLs, SALs and SQLs"}
    assert points[("new_leads", "2026-11-02")] == "2"
    assert points[("new_leads", "2026-11-16")] == "0"   # the quiet week is a point at zero


@pytest.mark.parametrize("name", [n for n in REPORTS if n not in ("rules-impact",
                                                                  "clean-your-room")])
def test_the_json_route_answers_what_the_cli_prints(world_store: StateStore, serve: Serve,
                                                    name: str) -> None:
    """clean-your-room is left out: its ages are measured from the moment it runs."""
    base = serve(world_store)
    web = requests.get(f"{base}/reports/{name}.json", params=NOVEMBER, timeout=10).json()
    printed = CliRunner().invoke(app, [
        "report", name, "--json", "--state", world_store.url, "--mappings", str(MAPPINGS),
        *(arg for key, value in NOVEMBER.items() for arg in (f"--{key}", value))])
    assert printed.exit_code == 0, printed.output
    assert web == json.loads(printed.stdout)


def test_rules_impact_has_a_page_that_explains_the_cli_and_no_json(world_store: StateStore,
                                                                   serve: Serve) -> None:
    base = serve(world_store)
    page = requests.get(base + "/reports/rules-impact", timeout=10)
    assert page.status_code == 200 and "--proposed" in page.text
    answer = requests.get(base + "/reports/rules-impact.json", timeout=10)
    assert answer.status_code == 400 and "--proposed" in answer.json()["hint"]


def test_names_from_the_crm_are_escaped_not_run(world_store: StateStore,
                                                serve: Serve) -> None:
    hostile = '<script>alert(1)</script>"><img src=x>'
    seed(world_store, [_sf("Campaign", "701H", Name=hostile),
                       _activity(1, "cmH", "campaign_response", at(12, 9), "701H")])
    page = requests.get(serve(world_store) + "/reports/campaigns", params=NOVEMBER, timeout=10)
    assert hostile not in page.text and "<script>alert" not in page.text
    assert page.text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 2   # table and chart


def _serve(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, ["serve", *args], env=env or {})


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "dashboard.example.com"])
def test_serve_refuses_a_bind_beyond_this_machine_without_auth(
        empty_store: StateStore, host: str) -> None:
    refused = _serve("--host", host, "--port", "0", "--state", empty_store.url)
    assert refused.exit_code == 1
    assert "no token or basic auth is configured" in refused.output
    assert "SYNCAGENT_WEB__TOKEN" in refused.output and "Traceback" not in refused.output


@pytest.mark.parametrize("env", [{"SYNCAGENT_WEB__TOKEN": "  "},
                                 {"SYNCAGENT_WEB__USERNAME": "admin"},
                                 {"SYNCAGENT_WEB__PASSWORD": "only-a-password"}])
def test_blank_or_half_auth_settings_are_refused_not_ignored(empty_store: StateStore,
                                                             env: dict[str, str]) -> None:
    refused = _serve("--host", "0.0.0.0", "--state", empty_store.url, env=env)
    assert refused.exit_code == 1 and "setting 'web" in refused.output
    for value in env.values():
        if value.strip() and value != "admin":
            assert value not in refused.output


def test_serve_without_a_state_db_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    refused = _serve("--state", f"sqlite:///{missing}")
    assert refused.exit_code == 1 and f"no state DB at {missing}" in refused.output


def test_serve_without_the_web_extra_names_the_extra(empty_store: StateStore,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "fastapi" else real(name, *a))
    refused = _serve("--state", empty_store.url)
    assert refused.exit_code == 1
    assert "pip install 'syncagent[web]'" in refused.output and "fastapi" in refused.output


def test_serve_on_a_taken_port_says_so(empty_store: StateStore) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        refused = _serve("--port", str(taken.getsockname()[1]), "--state", empty_store.url)
    assert refused.exit_code == 1 and "cannot listen on 127.0.0.1" in refused.output


def test_the_serve_command_answers_on_the_port_it_prints(empty_store: StateStore) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "syncagent", "serve", "--port", "0", "--state", empty_store.url,
         "--mappings", str(MAPPINGS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, line + (process.stderr.read() if process.poll() is not None else "")
        assert requests.get(url.group(0) + "healthz", timeout=10).text == "ok\n"
        assert requests.get(url.group(0), timeout=30).status_code == 200
    finally:
        process.terminate()
        process.wait(10)


def test_pages_and_probes_answer_on_sqlite_and_postgres(state_url: str, serve: Serve) -> None:
    store = StateStore(state_url)
    store.upgrade()
    seed(store, _world())
    add_runs(store)
    try:
        base = serve(store)
        for path in PAGES:
            assert requests.get(base + path, params=NOVEMBER, timeout=30).status_code == 200
        funnel = requests.get(base + "/reports/funnel.json", params=NOVEMBER, timeout=30).json()
        assert {r["stage"]: r["reached"] for r in funnel["tables"][0]["rows"]}["MQL"] == 3
        assert requests.get(base + "/metrics", timeout=10).status_code == 200
        assert requests.get(base + "/readyz", timeout=10).status_code == 503  # stale at NOW
    finally:
        store.dispose()
