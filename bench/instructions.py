"""Benchmark: the machine instructions a rescore executes per person, a figure that the host's
speed does not move.

bench/scale.py's rates follow the host: on this project's 2-core hosts, the time of
bench/host.py's fixed workload (``python_loop_ns``) read ~210 ns and ~370 ns within one
session, often within one run, and the rates moved with it, so a change worth 5-10% could not
be shown by a rate. The count of
instructions the CPU executes for the same work hardly moves (valgrind's cachegrind counts
them, on a simulated CPU). So this bench seeds two SQLite state DBs as scale.py does
(bench/scale_seed.py), runs scale.py's rescore child on each under cachegrind, with the
agent's default evaluation workers, and prints the difference per person:

    instructions_per_person = (all processes' instructions at the larger size
                               - at the smaller) / (the difference in persons)

The difference leaves out what does not grow with persons: start-up, imports, loading the
rules. A forked worker's count starts from its parent's at the fork, which the difference
cancels too (the same work before the fork at both sizes, but for the org's accounts: one per
20 persons, loaded once and counted once per process; a small part). ``main`` and ``workers``
split the figure between the rescore's own process (reading ids, committing) and its workers
(reading, evaluating, planning). The Postgres server's instructions are not counted: SQLite
only.

    python bench/instructions.py [--sizes 2000 4000] [--workers N] [--keep DIR]

Both sizes must be more than one chunk (1,000 persons), so that the workers run at both.
Takes about 30 s per thousand persons on a 2-core host (cachegrind runs the code ~50x slower).
``--keep DIR`` keeps cachegrind's files (``cg_annotate DIR/cg.<pid>`` lists the costliest
lines). Needs valgrind (Debian's package ``valgrind``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from syncagent.pipeline.decide import CHUNK  # noqa: E402  (one chunk: no workers start)

SUMMARY = "summary:"


class BenchError(SystemExit):
    """Stops the bench with a message saying what to do (no traceback)."""


def valgrind() -> str:
    found = shutil.which("valgrind")
    if found is None:
        raise BenchError("bench/instructions.py needs valgrind to count instructions: install "
                         "it (Debian: apt-get install valgrind) and run again")
    return found


def instructions_in(out_file: Path) -> int:
    """The instructions a cachegrind output file counts (its ``summary:`` line)."""
    for line in out_file.read_text(errors="replace").splitlines():
        if line.startswith(SUMMARY):
            return int(line[len(SUMMARY):].split()[0])
    raise BenchError(f"{out_file}: no '{SUMMARY}' line: the file is cut, as when its "
                     "process was killed before it ended; run the bench again")


def counted_command(tool: str, out_folder: Path, command: Sequence[str]) -> list[str]:
    """``command`` under cachegrind, counting instructions only, one file per process."""
    return [tool, "--tool=cachegrind", "--cache-sim=no", "--branch-sim=no",
            f"--cachegrind-out-file={out_folder}/cg.%p", *command]


@dataclass(frozen=True)
class Counted:
    """A command's output and instructions: the process started (valgrind keeps its pid) and
    each process it forked (``forked``, by pid; each count includes its parent's at the
    fork)."""

    stdout: str
    main: int
    forked: dict[int, int]


def run_counted(tool: str, out_folder: Path, command: Sequence[str], what: str,
                cwd: Path | None = None) -> Counted:
    """Run ``command`` under cachegrind, its files in ``out_folder`` (made here, new)."""
    out_folder.mkdir()
    with subprocess.Popen(counted_command(tool, out_folder, command), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=cwd) as child:
        stdout, stderr = child.communicate()
    if child.returncode != 0:
        raise BenchError(f"{what} under valgrind failed (exit {child.returncode}):\n"
                         f"{stderr[-3000:]}")
    counts = {int(f.name.split(".")[1]): instructions_in(f) for f in out_folder.glob("cg.*")}
    if child.pid not in counts:
        raise BenchError(f"valgrind left no count for the process it started ({child.pid}) "
                         f"in {out_folder}")
    main = counts.pop(child.pid)
    return Counted(stdout, main, counts)


def count_rescore(tool: str, persons: int, workers: int | None, folder: Path
                  ) -> dict[str, Any]:
    """Seed a SQLite state DB with ``persons``, rescore it under cachegrind; the figures."""
    from bench.scale import child_command, seed_state

    url = f"sqlite:///{folder}/state-{persons}.db"
    seed_state(url, persons)
    counted = run_counted(tool, folder / f"cg-{persons}", child_command(url, workers),
                          f"the rescore of {persons} persons", cwd=ROOT)
    figures = json.loads(counted.stdout.strip().splitlines()[-1])
    workers_count = sum(counted.forked.values())
    return {"persons": figures["persons"], "planned": figures["planned"],
            "status": figures["status"], "processes": 1 + len(counted.forked),
            "main": counted.main, "workers": workers_count,
            "all": counted.main + workers_count}


def per_person(small: dict[str, Any], large: dict[str, Any]) -> dict[str, int]:
    """The instructions each added person cost, in all and by process kind."""
    persons = large["persons"] - small["persons"]
    if persons <= 0:
        raise BenchError("the larger size evaluated no more persons than the smaller: "
                         f"{small['persons']} and {large['persons']}")
    return {part: round((large[part] - small[part]) / persons)
            for part in ("all", "main", "workers")}


def check_sizes(sizes: Sequence[int]) -> tuple[int, int]:
    small, large = sorted(sizes)
    if small <= CHUNK:
        raise BenchError(f"--sizes: each size must be above one chunk ({CHUNK} persons), so "
                         f"that the evaluation workers run at both; got {small}")
    if large == small:
        raise BenchError("--sizes: give two different sizes")
    return small, large


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[2_000, 4_000],
                        metavar=("SMALL", "LARGE"), help="persons in the two rescores")
    parser.add_argument("--workers", type=int, default=None,
                        help="evaluation processes (default: the agent's; 0: none)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the state DBs and cachegrind's files in DIR")
    args = parser.parse_args(argv)
    small, large = check_sizes(args.sizes)
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        raise BenchError(f"--keep {args.keep}: the folder is not empty; give a new one (a "
                         "previous run's files would be counted again)")
    tool = valgrind()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        runs = [count_rescore(tool, size, args.workers, folder) for size in (small, large)]
    print(json.dumps({"benchmark": "instructions.rescore",
                      "at": datetime.now().astimezone().isoformat(timespec="seconds"),
                      "backend": "sqlite", "runs": runs,
                      "instructions_per_person": per_person(*runs)}, indent=2))


if __name__ == "__main__":
    main()
