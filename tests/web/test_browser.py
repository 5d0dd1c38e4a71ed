"""A real headless Chromium (Debian's chromium + chromium-driver) loads every page of a
dashboard over a state DB the pipeline filled from the sandbox: no console error, the charts
drawn, and every number on the page equal to the report's JSON. A screenshot of each page is
saved under the test's temp dir.

`make test` runs scripts/ensure-chromium first, which installs the two packages when it can;
when a binary is still missing this test skips, saying which and why.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from state.store import StateStore
from syncagent.reports import REPORTS
from syncagent.web.views import CHARTS, OVERVIEW_CHARTS
from tests.e2e.clitools import Cli, copy_mappings
from tests.web.conftest import Serve
from tests.web.expect import cell, column_sum, expected_marks, expected_tables

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
INSTALL_NOTE = Path(__file__).resolve().parents[2] / ".pytest_cache" / "ensure-chromium.txt"
# The sandbox seeds leads created over the 18 months before today.
WIDE = {"since": (datetime.now(UTC).date() - timedelta(days=550)).isoformat(), "by": "month"}


def _why_no_browser() -> str | None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return None
    note = INSTALL_NOTE.read_text().strip() if INSTALL_NOTE.is_file() else (
        "scripts/ensure-chromium has not run (make test runs it)")
    return f"missing {', '.join(missing)}: {note}"


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    reason = _why_no_browser()
    if reason:
        pytest.skip(reason)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.common.exceptions import WebDriverException

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,900", "--no-first-run"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        browser = webdriver.Chrome(options=options,
                                   service=webdriver.ChromeService(str(CHROMEDRIVER)))
    except WebDriverException as error:
        pytest.skip(f"chromium did not start: {error.msg or error}"[:500])
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def synced(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StateStore]:
    """One real sync of the shared sandbox (300 leads) into a fresh state DB."""
    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{folder / 'state.db'}"
    store = StateStore(url)
    store.upgrade()
    sandbox.reset()
    cli = Cli(sandbox.url, url, copy_mappings(folder / "mappings"))
    assert cli.json("sync", "--once")["status"] in ("ok", "partial")
    yield store
    store.dispose()


def _numbers_of(browser: Any, by: Any) -> dict[str, list[list[str]]]:
    tables = {}
    for table in browser.find_elements(by.CSS_SELECTOR, "table[data-table]"):
        rows = table.find_elements(by.CSS_SELECTOR, "tbody tr")
        tables[table.get_attribute("data-table")] = [
            [" ".join(td.text.split()) for td in row.find_elements(by.TAG_NAME, "td")]
            for row in rows]
    return tables


def _marks_of(browser: Any, by: Any) -> dict[tuple[str, str, str], float]:
    marks = {}
    for svg in browser.find_elements(by.CSS_SELECTOR, "svg.chart"):
        title = svg.get_attribute("data-chart")
        for mark in svg.find_elements(by.CSS_SELECTOR, ".mark"):
            key = (title, mark.get_attribute("data-series"), mark.get_attribute("data-label"))
            marks[key] = float(mark.get_attribute("data-value"))
    return marks


def _console_errors(browser: Any) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser")
            if entry["level"] in ("SEVERE", "ERROR")]


def test_every_page_in_chromium_shows_its_report_json(driver: Any, synced: StateStore,
                                                      serve: Serve, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    base = serve(synced, clock=None)
    query = "?" + "&".join(f"{k}={v}" for k, v in WIDE.items())
    results = {name: requests.get(f"{base}/reports/{name}.json{query}", timeout=30).json()
               for name in REPORTS if name != "rules-impact"}
    for path in ["/", *(f"/reports/{name}" for name in REPORTS)]:
        driver.get(base + path + query)
        name = path.rsplit("/", 1)[-1] or "overview"
        assert driver.save_screenshot(str(tmp_path / f"{name}.png"))
        assert _console_errors(driver) == [], path
        assert "Traceback" not in driver.page_source
        if name == "rules-impact":
            assert driver.find_element(By.ID, "cli-only").is_displayed()
            continue
        marks = _marks_of(driver, By)
        specs = [spec for report, title in OVERVIEW_CHARTS for spec in CHARTS[report]
                 if spec.title == title] if name == "overview" else list(CHARTS[name])
        owners = [report for report, _ in OVERVIEW_CHARTS] if name == "overview" \
            else [name] * len(specs)
        for report, spec in zip(owners, specs, strict=True):
            wanted = expected_marks(results[report], spec.table, spec.label, spec.values,
                                    spec.pivot, spec.over_time)
            drawn = {k[1:]: v for k, v in marks.items() if k[0] == spec.title}
            assert drawn.keys() == wanted.keys(), (path, spec.title)
            assert all(drawn[k] == pytest.approx(v, rel=1e-3) for k, v in wanted.items())
        if name == "overview":
            assert marks, "the overview draws its charts"
            for figure in driver.find_elements(By.CSS_SELECTOR, ".key-figure"):
                attrs = {a: figure.get_attribute(f"data-{a}") for a in ("report", "table",
                                                                       "column")}
                total = column_sum(results[attrs["report"]], attrs["table"], attrs["column"])
                assert figure.text == cell(total), attrs
            continue
        assert _numbers_of(driver, By) == expected_tables(results[name]), path
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(
        ["overview.png", *(f"{n}.png" for n in REPORTS)])
    assert all(re.match(rb"\x89PNG", p.read_bytes()[:4]) for p in tmp_path.glob("*.png"))


def test_without_chromium_the_reason_names_the_missing_binary(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import tests.web.test_browser as here

    note = tmp_path / "ensure-chromium.txt"
    note.write_text("apt-get install chromium chromium-driver failed: E: Unable to locate\n")
    monkeypatch.setattr(here, "CHROMEDRIVER", tmp_path / "chromedriver")
    monkeypatch.setattr(here, "INSTALL_NOTE", note)
    reason = here._why_no_browser()
    assert reason is not None and str(tmp_path / "chromedriver") in reason
    assert "apt-get install chromium chromium-driver failed" in reason
    assert str(here.CHROMIUM) not in reason or not here.CHROMIUM.exists()
