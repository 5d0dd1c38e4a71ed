"""The fuzz budget: a few dozen cases per suite in `make test`, thousands in `make test-slow`.

SYNCAGENT_FUZZ_EXAMPLES sets the cases per fuzz test (the Makefile's test-slow gives 2,000 to
each of the five suites: 10,000 in all). Every case that ran is counted, and the count is
printed at the end of the run, with the exceptions that were not the project's own (which
also fail the test that met them).
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, settings

EXAMPLES = int(os.environ.get("SYNCAGENT_FUZZ_EXAMPLES", "40"))
# `make test` replays the same cases every run (a new random find must not fail someone's
# unrelated merge); a run with a budget set explores new cases each time.
DERANDOMIZE = "SYNCAGENT_FUZZ_EXAMPLES" not in os.environ
RAN: Counter[str] = Counter()
UNEXPECTED: Counter[str] = Counter()

# No shrinking: a failing case is reported as found (shrinking hostile inputs of 100 kB can
# take minutes), with the seed to replay it.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
                phases=(Phase.explicit, Phase.reuse, Phase.generate),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RAN:
        return
    total = sum(RAN.values())
    parts = ", ".join(f"{name} {n}" for name, n in sorted(RAN.items()))
    terminalreporter.write_line(
        f"fuzz: {total} cases ({parts}); unexpected exceptions: {sum(UNEXPECTED.values())}"
        + (f" {dict(UNEXPECTED)}" if UNEXPECTED else ""))
