"""`syncagent init`, the packaged default mappings, and the optional sandbox extra."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from syncagent.cli import app
from syncagent.commands import sandbox as sandbox_commands
from syncagent.commands.init import env_example, secret_variables, settings_yaml
from syncagent.defaults import packaged_mappings_dir
from syncagent.settings import Settings, load_settings

runner = CliRunner()
REPO_MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"
SETTING_LINE = re.compile(r"^# ( *)([a-z_0-9]+):(?: (.*))?$")


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts in an empty folder, with no SYNCAGENT_* variable from outside."""
    import os

    for name in list(os.environ):
        if name.startswith("SYNCAGENT_"):
            monkeypatch.delenv(name)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


def _field_paths(model: type[BaseModel], depth: int = 0) -> list[tuple[int, str]]:
    paths: list[tuple[int, str]] = []
    for name, info in model.model_fields.items():
        paths.append((depth, name))
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            paths += _field_paths(info.annotation, depth + 1)
    return paths


def test_init_writes_a_layout_that_check_accepts_and_a_second_init_refuses(
        tmp_path: Path) -> None:
    target = tmp_path / "agent"
    first = runner.invoke(app, ["init", str(target)])
    assert first.exit_code == 0, first.output
    checked = runner.invoke(app, ["check", "--mappings", str(target / "mappings")])
    assert checked.exit_code == 0, checked.output
    assert "OK" in checked.output
    (target / "mappings" / "fields.yaml").write_text("# my own edits\n")
    second = runner.invoke(app, ["init", str(target)])
    assert second.exit_code == 1
    assert "already exists" in second.output and "--force" in second.output
    assert "Traceback" not in second.output
    assert (target / "mappings" / "fields.yaml").read_text() == "# my own edits\n"


def test_a_refused_init_writes_nothing_at_all(tmp_path: Path) -> None:
    """One file in the way stops the whole init: no half-written layout is left behind."""
    target = tmp_path / "agent"
    target.mkdir()
    (target / "NEXT-STEPS.md").write_text("mine\n")
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 1
    assert f"{target / 'NEXT-STEPS.md'} already exists; nothing was written" in result.output
    assert sorted(p.name for p in target.iterdir()) == ["NEXT-STEPS.md"]


def test_force_restores_the_shipped_files(tmp_path: Path) -> None:
    target = tmp_path / "agent"
    assert runner.invoke(app, ["init", str(target)]).exit_code == 0
    (target / "mappings" / "grading.yaml").write_text("broken: [\n")
    result = runner.invoke(app, ["init", str(target), "--force"])
    assert result.exit_code == 0, result.output
    shipped = (packaged_mappings_dir() / "grading.yaml").read_bytes()
    assert (target / "mappings" / "grading.yaml").read_bytes() == shipped


def test_init_into_a_path_that_is_a_file_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder\n")
    result = runner.invoke(app, ["init", str(blocker / "agent")])
    assert result.exit_code == 1
    assert "cannot write into" in result.output and "Traceback" not in result.output


def test_run_from_the_init_folder_uses_its_config_and_mappings(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    target = tmp_path / "agent"
    assert runner.invoke(app, ["init", str(target)]).exit_code == 0
    monkeypatch.chdir(target)
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("mappings: OK")
    assert load_settings().mappings_dir == Path("mappings")


def test_every_setting_of_the_model_appears_in_the_config_file() -> None:
    text = settings_yaml()
    lines = text.splitlines()
    for depth, name in _field_paths(Settings):
        key = "  " * depth + f"{name}:"
        assert any(line in (key, "# " + key) or line.startswith((key + " ", "# " + key + " "))
                   for line in lines), f"setting {name} (depth {depth}) missing"


def test_uncommenting_every_setting_gives_exactly_the_defaults(tmp_path: Path) -> None:
    """The values shown are the real defaults: uncommented, they change nothing."""
    uncommented = []
    for line in settings_yaml().splitlines():
        match = SETTING_LINE.match(line)
        uncommented.append(line[2:] if match else line)
    config = tmp_path / "all.yaml"
    config.write_text("\n".join(uncommented))
    loaded = load_settings(config)
    defaults = Settings()
    assert loaded.model_dump(exclude={"mappings_dir"}) == defaults.model_dump(
        exclude={"mappings_dir"})
    assert loaded.mappings_dir == Path("mappings")


def test_the_config_file_as_written_loads_and_sets_only_the_mappings_folder(
        tmp_path: Path) -> None:
    config = tmp_path / "syncagent.yaml"
    config.write_text(settings_yaml())
    assert yaml.safe_load(config.read_text()) == {"mappings_dir": "mappings"}
    assert load_settings(config).mappings_dir == Path("mappings")


def test_env_example_names_every_secret_and_no_other_setting() -> None:
    text = env_example()
    assigned = {line.split("=", 1)[0] for line in text.splitlines()
                if line and not line.startswith("#")}
    secrets = {name for name, _ in secret_variables()}
    assert "SYNCAGENT_HUBSPOT__ACCESS_TOKEN" in secrets
    assert "SYNCAGENT_SALESFORCE__PASSWORD" in secrets
    assert "SYNCAGENT_SALESFORCE__USERNAME" not in secrets
    assert assigned == secrets


def test_without_local_mappings_the_packaged_ones_are_used() -> None:
    assert Settings().mappings_dir == packaged_mappings_dir()


def test_an_empty_mappings_folder_falls_back_to_the_packaged_ones() -> None:
    """An empty volume mounted at ./mappings must not hide the shipped rules."""
    Path("mappings").mkdir()
    assert Settings().mappings_dir == packaged_mappings_dir()
    (Path("mappings") / "fields.yaml").write_text("version: 1\n")
    assert Settings().mappings_dir == Path("mappings")


def test_the_packaged_mappings_are_the_repository_files_not_a_copy_that_drifts() -> None:
    packaged = packaged_mappings_dir()
    for source in REPO_MAPPINGS.glob("*.yaml"):
        assert (packaged / source.name).read_bytes() == source.read_bytes(), source.name


def test_sandbox_without_its_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_commands, "SANDBOX_MODULES",
                        ("fastapi", "syncagent_test_module_that_is_not_installed"))
    for command in (["sandbox", "--port", "0"], ["demo"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1
        assert "pip install 'syncagent[sandbox]'" in result.output
        assert "syncagent_test_module_that_is_not_installed" in result.output
        assert "Traceback" not in result.output


CORE_IMPORTS_WITHOUT_THE_EXTRA = r"""
import importlib, importlib.abc, pkgutil, sys

class NoSandboxExtra(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"fastapi", "starlette", "uvicorn", "trustme", "faker",
                                  "jinja2"}:
            raise ImportError(f"{name} is in the sandbox or web extra")
        return None

sys.meta_path.insert(0, NoSandboxExtra())
imported = 0
for package in ("syncagent", "connectors", "state"):
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        # the sandbox and the dashboard are the extras themselves (`serve` imports web lazily)
        if info.name.startswith(("syncagent.sandbox", "syncagent.web", "state.migrations",
                                 "syncagent.__main__")):
            continue
        importlib.import_module(info.name)
        imported += 1
from syncagent.cli import app
print(imported)
"""


def test_the_agent_imports_nothing_from_the_sandbox_extra() -> None:
    """Every module outside syncagent/sandbox and syncagent/web imports with fastapi, uvicorn,
    trustme and jinja2 absent."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", CORE_IMPORTS_WITHOUT_THE_EXTRA],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 40  # the walk really visited the package
