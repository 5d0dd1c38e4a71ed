"""Every malformed mapping file under bad_mappings/ gives exactly one clear error that names
the file and the line, and `syncagent check` exits 1 on it without a traceback.

Each case file replaces one shipped file (its name is ``<file>__<case>.yaml``). Its header
says what the error must contain (``# expect:``); the line is the one marked ``# <- error``
or given by ``# expect-line:``; ``# expect-file:`` names another file when the error belongs
there (a threshold no grade can reach lives in lifecycle.yaml).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from syncagent.cli import app
from syncagent.engine import MappingError, load_rules

CASES = sorted((Path(__file__).parent / "bad_mappings").glob("*.yaml"))


def _expectations(case: Path) -> tuple[str, str, int]:
    text = case.read_text()
    expect = re.search(r"^# expect: (.+)$", text, re.M)
    assert expect, f"{case.name} has no '# expect:' header"
    file_match = re.search(r"^# expect-file: (.+)$", text, re.M)
    target = file_match.group(1) if file_match else case.name.split("__")[0] + ".yaml"
    line_match = re.search(r"^# expect-line: (\d+)$", text, re.M)
    if line_match:
        line = int(line_match.group(1))
    else:
        marked = [i for i, row in enumerate(text.splitlines(), 1) if row.endswith("# <- error")]
        assert len(marked) == 1, f"{case.name} must mark exactly one line"
        line = marked[0]
    return expect.group(1), target, line


def _install(case: Path, mappings: Path) -> None:
    shutil.copy(case, mappings / (case.name.split("__")[0] + ".yaml"))


def test_there_are_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_bad_mapping_gives_one_error_with_file_and_line(case: Path, mappings_copy: Path) -> None:
    expected, target, line = _expectations(case)
    _install(case, mappings_copy)
    with pytest.raises(MappingError) as caught:
        load_rules(mappings_copy)
    problems = caught.value.problems
    assert len(problems) == 1, "\n".join(str(p) for p in problems)
    problem = problems[0]
    assert problem.file == str(mappings_copy / target)
    assert problem.line == line, str(problem)
    assert expected in problem.message, str(problem)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_check_command_exits_1_naming_file_and_line(case: Path, mappings_copy: Path) -> None:
    expected, target, line = _expectations(case)
    _install(case, mappings_copy)
    result = CliRunner().invoke(app, ["check", "--mappings", str(mappings_copy)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{mappings_copy / target}:{line}: " in result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.output


def test_issue_example_message_is_exact(mappings_copy: Path) -> None:
    """The wording the issue asks for: file:line: unknown operator ... (did you mean ...?)."""
    case = next(c for c in CASES if c.stem == "scoring__unknown_operator")
    _install(case, mappings_copy)
    with pytest.raises(MappingError) as caught:
        load_rules(mappings_copy)
    assert str(caught.value.problems[0]) == (
        f"{mappings_copy}/scoring.yaml:15: unknown operator 'containz' "
        "(did you mean 'contains_any'?)")


def test_every_problem_is_reported_at_once(mappings_copy: Path) -> None:
    """Two broken files give two problems in one run, not one per attempt."""
    for stem in ("scoring__unknown_operator", "routing__zero_weight"):
        _install(next(c for c in CASES if c.stem == stem), mappings_copy)
    with pytest.raises(MappingError) as caught:
        load_rules(mappings_copy)
    files = sorted(Path(p.file).name for p in caught.value.problems)
    assert files == ["routing.yaml", "scoring.yaml"]
