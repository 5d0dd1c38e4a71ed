"""The engine's commands: check, schema, preview."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from syncagent.cli import app

from .conftest import ROOT, SHIPPED

runner = CliRunner()
EXAMPLE = SHIPPED / "examples" / "person.json"


def test_check_passes_on_the_shipped_files() -> None:
    result = runner.invoke(app, ["check", "--mappings", str(SHIPPED)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout


def test_check_exits_1_without_traceback_in_a_real_process(mappings_copy: Path) -> None:
    (mappings_copy / "routing.yaml").write_text("version: 1\nrules: [\n")
    result = subprocess.run([sys.executable, "-m", "syncagent", "check", "--mappings",
                             str(mappings_copy)], capture_output=True, text=True, timeout=60,
                            cwd=ROOT)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{mappings_copy}/routing.yaml:" in result.stderr
    assert result.stderr.startswith("error: ")


def test_schema_writes_one_schema_per_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(p.name for p in (SHIPPED / "schema").iterdir())
    scoring = json.loads((tmp_path / "scoring.schema.json").read_text())
    assert "activities" in scoring["properties"]


def test_preview_prints_every_part_with_its_reason() -> None:
    result = runner.invoke(app, ["preview", "--person", str(EXAMPLE), "--mappings",
                                 str(SHIPPED)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    for part in ("grade", "score", "segment", "stage", "owner", "track"):
        assert part in out
    assert "company-size matches" in out                  # grade reason
    assert "form-submission x2" in out                     # score reason
    assert "fit high" in out                               # segment reason
    assert "grade A ≥ B and score" in out                  # stage reason
    assert "Eve Novak was next in the pool na-smb" in out  # owner reason
    assert "left nurture: reached MQL" in out              # track reason


def test_preview_json_is_machine_readable() -> None:
    result = runner.invoke(app, ["preview", "--person", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["decision"]["stage"]["stage"] == "MQL"
    assert data["decision"]["owner"]["owner_id"] == "005000000000003AAA"
    assert data["routing_state"]["assigned"]["005000000000003AAA"] == 1


def test_preview_of_a_bad_person_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "p.json"
    bad.write_text('{"person_id": "x", "activities": [{"kind": "page_view"}]}')
    result = runner.invoke(app, ["preview", "--person", str(bad)])
    assert result.exit_code == 1
    assert "activities.0.occurred_at" in result.stderr
    bad.write_text("{not json")
    result = runner.invoke(app, ["preview", "--person", str(bad)])
    assert result.exit_code == 1
    assert "not valid JSON" in result.stderr


def test_preview_now_option_moves_the_clock() -> None:
    later = runner.invoke(app, ["preview", "--person", str(EXAMPLE), "--json",
                                "--now", "2027-06-01T00:00:00Z"])
    assert later.exit_code == 0, later.output
    decision = json.loads(later.stdout)["decision"]
    assert decision["evaluated_at"] == "2027-06-01T00:00:00+00:00"
    assert decision["score"]["score"] < 149      # the same activities, decayed
    naive = runner.invoke(app, ["preview", "--person", str(EXAMPLE), "--now", "2027-06-01"])
    assert naive.exit_code == 1
    assert "no time zone" in naive.stderr


def test_preview_of_an_accepted_lead_shows_its_qualify_reminders(tmp_path: Path) -> None:
    """The person file carries the SLA memory (sal_at, last_alert_at) in `previous`."""
    data = json.loads(EXAMPLE.read_text())
    data["crm"] = {"owner_id": "005000000000003AAA", "lead_status": "Accepted"}
    data["previous"] = {"stage": "SAL", "owner_id": "005000000000003AAA",
                        "sal_at": "2026-11-20T15:00:00Z",
                        "last_alert_at": "2026-11-25T08:00:00Z"}
    path = tmp_path / "sal.json"
    path.write_text(json.dumps(data))
    result = runner.invoke(app, ["preview", "--person", str(path), "--json"])
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)["decision"]
    assert decision["stage"]["stage"] == "SAL"
    assert {t["kind"]: t["due_at"] for t in decision["sla"]} == {
        "qualify": "2026-11-27T15:00:00+00:00", "qualify_late": "2026-12-01T03:00:00+00:00"}
    assert decision["alerts"] == []     # within the cooldown of the alert an hour ago
