"""bench/instructions.py: instructions a rescore executes per person, counted by cachegrind."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import instructions  # noqa: E402

# a parent that forks a child; each loops ``n`` times (argv[1]) after the fork
FORKING = """
import os, sys
pid = os.fork()
total = sum(range(int(sys.argv[1])))
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
"""
needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None,
                                    reason="valgrind is not installed here")


def _count(folder: Path, loops: int) -> instructions.Counted:
    """FORKING under cachegrind: the parent's instructions and its forked child's."""
    return instructions.run_counted(instructions.valgrind(), folder,
                                    [sys.executable, "-S", "-c", FORKING, str(loops)],
                                    "the forking script")


@needs_valgrind
def test_each_process_is_counted_and_more_work_counts_more(tmp_path: Path) -> None:
    few = _count(tmp_path / "few", 1_000)
    many = _count(tmp_path / "many", 400_000)
    assert len(few.forked) == len(many.forked) == 1     # the forked child's, beside the parent's
    # each process's own loop after the fork: 399,000 more iterations, several instructions
    # each (the rest of the two runs is the same work)
    assert many.main - few.main > 399_000 * 5
    [child_few] = few.forked.values()
    [child_many] = many.forked.values()
    assert child_many - child_few > 399_000 * 5


@needs_valgrind
def test_a_failing_command_is_said_with_its_exit(tmp_path: Path) -> None:
    with pytest.raises(instructions.BenchError, match="the failing script under valgrind "
                                                      "failed \\(exit 3\\)"):
        instructions.run_counted(instructions.valgrind(), tmp_path / "cg",
                                 [sys.executable, "-S", "-c", "raise SystemExit(3)"],
                                 "the failing script")


def test_per_person_is_the_difference_over_the_added_persons() -> None:
    small = {"persons": 2_000, "all": 10_000_000, "main": 4_000_000, "workers": 6_000_000}
    large = {"persons": 4_000, "all": 14_000_000, "main": 4_600_000, "workers": 9_400_000}
    assert instructions.per_person(small, large) == {"all": 2_000, "main": 300,
                                                     "workers": 1_700}


def test_per_person_refuses_sizes_that_evaluated_the_same_persons() -> None:
    run = {"persons": 2_000, "all": 1, "main": 1, "workers": 0}
    with pytest.raises(instructions.BenchError, match="no more persons"):
        instructions.per_person(run, dict(run))


@pytest.mark.parametrize(("sizes", "says"), [((1_000, 4_000), "above one chunk"),
                                             ((3_000, 3_000), "two different sizes")])
def test_sizes_that_would_not_measure_the_workers_are_refused(sizes: tuple[int, int],
                                                              says: str) -> None:
    with pytest.raises(instructions.BenchError, match=says):
        instructions.check_sizes(sizes)


def test_a_file_without_its_summary_is_named(tmp_path: Path) -> None:
    cut = tmp_path / "cg.41"
    cut.write_text("events: Ir\nfl=x.c\nfn=f\n3 7\n")   # a process that never ended
    with pytest.raises(instructions.BenchError, match=r"cg\.41"):
        instructions.instructions_in(cut)


def test_without_valgrind_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instructions.shutil, "which", lambda _name: None)
    with pytest.raises(instructions.BenchError, match="install"):
        instructions.valgrind()


def test_a_kept_folder_with_files_is_refused_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "cg.7").write_text("summary: 1\n")
    with pytest.raises(instructions.BenchError, match="not empty"):
        instructions.main(["--keep", str(tmp_path)])
