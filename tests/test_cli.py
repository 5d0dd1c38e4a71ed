"""The command line: version, help, and the error boundary (no tracebacks for user errors)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from syncagent import __version__
from syncagent.cli import app

runner = CliRunner()


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"syncagent {__version__}"


def test_bad_setting_exits_1_with_one_clear_line_and_no_traceback(tmp_path: Path) -> None:
    config = tmp_path / "syncagent.yaml"
    config.write_text("salesforce:\n  daily_budget_share: 7\n")
    result = subprocess.run(
        [sys.executable, "-m", "syncagent", "status", "--config", str(config)],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "salesforce.daily_budget_share" in result.stderr
    assert result.stderr.startswith("error: ")
