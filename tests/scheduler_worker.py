"""A real agent process for the scheduler tests.

Usage: `python -m tests.scheduler_worker STATE_URL HOLDER OUT [--interval --lease --steps ...]`.

It runs `run_agent` with signal handlers installed, and a cycle made of small timed steps that
checks its stop event between steps, as a pipeline cycle checks it between batches. Each event
is appended to OUT as one JSON line {"holder", "event", "step", "at"} (aware UTC ISO time), and
flushed at once, so a test can read what happened even after a kill -9.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import UTC, datetime
from typing import IO, Any

from state.store import StateStore
from syncagent.logging import configure_logging
from syncagent.scheduler import run_agent


def _recorder(out: IO[str], holder: str) -> Any:
    lock = threading.Lock()

    def record(event: str, step: int | None = None) -> None:
        line = {"holder": holder, "event": event, "step": step,
                "at": datetime.now(UTC).isoformat()}
        with lock:
            out.write(json.dumps(line) + "\n")
            out.flush()

    return record


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("state_url")
    parser.add_argument("holder")
    parser.add_argument("out")
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--step-seconds", type=float, default=0.1)
    args = parser.parse_args()
    configure_logging(level="info", fmt="json")
    with open(args.out, "a", encoding="utf-8") as out:
        record = _recorder(out, args.holder)

        def cycle(stop: threading.Event) -> None:
            record("cycle_start")
            for step in range(args.steps):
                if stop.is_set():  # the safe point between two batches
                    record("cycle_stopped", step)
                    return
                record("step_start", step)
                time.sleep(args.step_seconds)
                record("step_end", step)
            record("cycle_end")

        run_agent(cycle=cycle, store=StateStore(args.state_url), holder=args.holder,
                  interval_seconds=args.interval, jitter_seconds=0.0,
                  lease_seconds=args.lease)
        record("exit")


if __name__ == "__main__":
    main()
