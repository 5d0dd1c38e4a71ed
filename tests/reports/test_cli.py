"""`syncagent report NAME` from the command line: bad arguments first, then each format."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from state.store import StateStore
from syncagent.cli import app
from syncagent.reports import REPORTS
from tests.reports.conftest import MAPPINGS, _world, seed

runner = CliRunner()
NOVEMBER = ["--since", "2026-11-02", "--until", "2026-11-30"]


@pytest.fixture
def url(sqlite_url: str) -> Iterator[str]:
    store = StateStore(sqlite_url)
    store.upgrade()
    seed(store, _world())
    store.dispose()
    yield sqlite_url


def _report(url: str, *args: str) -> object:
    return runner.invoke(app, ["report", *args, "--state", url, "--mappings", str(MAPPINGS)])


@pytest.mark.parametrize(("args", "said"), [
    (["funnel", "--since", "last tuesday"], "--since 'last tuesday' is not a date or time"),
    (["funnel", "--by", "year"], "--by 'year' is not one of day, week, month"),
    (["funnel", "--since", "2026-12-01", "--until", "2026-11-01"], "is not before --until"),
    (["leads-over-time", "--split", "owner"], "--split 'owner' is not one of"),
    (["nonsense"], "there is no report named 'nonsense'"),
])
def test_bad_arguments_name_the_option_and_exit_1(url: str, args: list[str],
                                                  said: str) -> None:
    result = runner.invoke(app, ["report", *args, "--state", url])
    assert result.exit_code == 1, result.output
    assert said in result.output and "hint:" in result.output
    assert "Traceback" not in result.output


def test_a_missing_state_db_is_named_and_not_created(tmp_path: object) -> None:
    path = f"{tmp_path}/none.db"
    result = runner.invoke(app, ["report", "funnel", "--state", f"sqlite:///{path}"])
    assert result.exit_code == 1 and f"there is no state DB at {path}" in result.output
    assert not __import__("pathlib").Path(path).exists()


def test_no_name_lists_every_report(url: str) -> None:
    result = runner.invoke(app, ["report"])
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == list(REPORTS)


def test_json_holds_the_period_and_the_rows(url: str) -> None:
    result = _report(url, "sources", *NOVEMBER, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["period"] == {"since": "2026-11-02T00:00:00+00:00",
                              "until": "2026-11-30T00:00:00+00:00", "by": "week"}
    assert [(r["source"], r["leads"], r["disqualify_reasons"])
            for r in data["tables"][0]["rows"]] == [("Advertisement", 2, "Not a Fit: 1"),
                                                    ("Web", 2, "")]


def test_csv_writes_one_block_per_table(url: str) -> None:
    result = _report(url, "mql-to-sal", *NOVEMBER, "--csv")
    assert result.exit_code == 0, result.output
    blocks = result.output.split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == ["# by rep", "# by pool"]
    reps = list(csv.reader(io.StringIO("\n".join(blocks[0].splitlines()[1:]))))
    assert reps[0][:3] == ["rep", "mqls", "accepted"]
    assert reps[1] == ["Ava", "2", "1", "0.5", "6.0", "1", "1", "0"]
    pools = blocks[1].splitlines()
    assert pools[2] == "(no pool),1,0,0.0,,0,0,0"   # no time to accept: an empty cell


def test_a_terminal_table_shows_every_bucket(url: str) -> None:
    result = _report(url, "leads-over-time", *NOVEMBER, "--split", "none")
    assert result.exit_code == 0, result.output
    for day in ("2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"):
        assert day in result.output
    assert "by week" in result.output


def test_rules_impact_wants_a_proposed_folder_that_checks(url: str, tmp_path: object) -> None:
    missing = _report(url, "rules-impact")
    assert missing.exit_code == 1 and "no --proposed folder was given" in missing.output
    broken = _report(url, "rules-impact", "--proposed", f"{tmp_path}/nowhere")
    assert broken.exit_code == 1 and "no such directory" in broken.output
    assert "Traceback" not in broken.output


def test_rules_impact_of_the_same_rules_as_json(url: str) -> None:
    result = _report(url, "rules-impact", "--proposed", str(MAPPINGS), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["tables"][0]
    assert [(r["part"], r["persons"], r["changed"]) for r in summary["rows"]] == [
        (part, 5, 0) for part in ("grade", "stage", "segment", "owner", "track")]
